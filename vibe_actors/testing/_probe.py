"""TestProbe: an agent that records what it receives (Akka TestKit's probe).

A probe is an ordinary agent in the tree (:func:`probe_spec`, or
``agent: vibe_actors.testing:ProbeAgent`` in wiring.yaml), so other agents
send to it by name. It records every message except :class:`Ping` —
whatever its type, through the :meth:`Agent.on_unhandled` fallback — and
answers asks by its :meth:`TestProbe.reply_with` rules. What it recorded lives
outside the agent: it survives the probe's own restarts.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from msgspec import structs

from vibe_actors._agent import Agent
from vibe_actors._entity import Entity
from vibe_actors._errors import UnknownAgent
from vibe_actors._ref import Ref
from vibe_actors._spec import EntitySpec, WorkerSpec
from vibe_actors._system import ActorSystem
from vibe_actors.testing._inbox import Inbox

__all__ = [
    "ProbeAgent",
    "ProbeEntity",
    "TestProbe",
    "add_probe",
    "entity_probe_spec",
    "probe_spec",
    "probes",
]

_lock = threading.Lock()
_probes: weakref.WeakKeyDictionary[ActorSystem, dict[str, TestProbe]] = weakref.WeakKeyDictionary()


class TestProbe:
    """The test's side of a probe agent: expectations on what it received.

    Get one with :func:`probes` (``probes(system)["name"]``) or :func:`add_probe`.
    Expectations consume messages in arrival order; every failure is an
    AssertionError listing what did arrive. Timeouts are real seconds.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, system: ActorSystem, name: str) -> None:
        self.system = system
        self.name = name
        self._inbox = Inbox(f"probe {name!r}")
        self._senders: list[str | None] = []
        self._entities: list[str | None] = []
        self._rules: dict[type, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TestProbe({self.name!r}, received={len(self._senders)})"

    @property
    def ref(self) -> Ref:
        """A ref to the probe agent (give it to the agent under test)."""
        return self.system.ref(self.name)

    @property
    def received(self) -> list[Any]:
        """Every message received so far, in order (consumed ones included)."""
        return self._inbox.items()

    @property
    def last_sender(self) -> str | None:
        """The sender's name of the latest message (None: none, or sent from outside an agent)."""
        with self._lock:
            return self._senders[-1] if self._senders else None

    @property
    def last_entity(self) -> str | None:
        """The entity id the latest message was sent to (an entity probe; else None)."""
        with self._lock:
            return self._entities[-1] if self._entities else None

    def expect(
        self,
        expected: Any,
        timeout: float = 1.0,
        *,
        where: Callable[[Any], bool] | None = None,
    ) -> Any:
        """Take the next message and return it; it must match ``expected``.

        ``expected`` is a message type (isinstance) or a message (equality);
        ``where(message)`` must also be true if given. Raises AssertionError
        if nothing arrives within ``timeout`` s, or if the next message does
        not match (it is consumed either way), listing what arrived.
        """
        return self._inbox.next(expected, timeout, where)

    def fish(
        self,
        expected: Any,
        timeout: float = 1.0,
        *,
        where: Callable[[Any], bool] | None = None,
    ) -> Any:
        """Like :meth:`expect`, but skip (consume) messages until one matches."""
        return self._inbox.find(expected, timeout, where)

    def expect_no_message(self, within: float = 0.1) -> None:
        """Raise AssertionError if a message is waiting or arrives within ``within`` s."""
        self._inbox.nothing(within)

    def reply_with(self, message_type: type, reply: Any) -> TestProbe:
        """Answer asks of ``message_type`` (and its subclasses) with ``reply``.

        ``reply`` is the reply itself, or a callable taking the message and
        returning it (raising from it crashes the probe). A later rule for the
        same type replaces the earlier one. Asks without a rule get None.
        Returns the probe (for chaining).
        """
        with self._lock:
            self._rules[message_type] = reply
        return self

    def tell(self, to: str, message: Any) -> None:
        """Send ``message`` to ``to`` with this probe as sender (so replies come here)."""
        self.system.ref(to, sender=self.name).tell(message)

    def watch(self, target: str) -> None:
        """Receive :class:`Terminated` when ``target`` stops for good."""
        self.system.deathwatch.watch(self.name, target)

    def _receive(self, message: Any, sender: str | None, entity: str | None = None) -> Any:
        with self._lock:
            self._senders.append(sender)
            self._entities.append(entity)
            rule = next((self._rules[t] for t in type(message).__mro__ if t in self._rules), None)
        self._inbox.put(message)
        return rule(message) if callable(rule) else rule


class ProbeAgent(Agent):
    """The agent behind a :class:`TestProbe`: records everything, replies by rule."""

    def on_start(self) -> None:
        self._probe = _probe_for(self.system, self.name)

    def on_unhandled(self, message: Any) -> Any:
        env = self.envelope
        sender = env.sender if env is not None else None
        return self._probe._receive(message, sender)  # noqa: SLF001 - the probe's own agent


class ProbeEntity(Entity[Any]):
    """An entity kind that records what any of its entities receives (one probe per kind).

    Every message reaches the kind's :class:`TestProbe` (``probes(system)[kind]``)
    with its entity id (:attr:`TestProbe.last_entity`); asks are answered by the
    probe's :meth:`TestProbe.reply_with` rules.
    """

    def on_unhandled(self, message: Any) -> Any:
        env = self.envelope
        sender = env.sender if env is not None else None
        probe = _probe_for(self.system, self.kind)
        return probe._receive(message, sender, self.id)  # noqa: SLF001 - the probe's own entity


def _probe_for(system: ActorSystem, name: str) -> TestProbe:
    with _lock:
        table = _probes.setdefault(system, {})
        probe = table.get(name)
        if probe is None:
            probe = table[name] = TestProbe(system, name)
        return probe


def probe_spec(name: str = "probe", **spec: Any) -> WorkerSpec:
    """A worker spec for a probe named ``name`` (``spec``: other WorkerSpec fields)."""
    return WorkerSpec(name=name, agent=ProbeAgent, **spec)


def entity_probe_spec(kind: str, **entity: Any) -> WorkerSpec:
    """An entity kind ``kind`` whose entities all record into one probe
    (``entity``: EntitySpec fields; one shard and no idle passivation by default)."""
    entity.setdefault("shards", 1)
    entity.setdefault("passivate_after", 0.0)
    return WorkerSpec(name=kind, agent=ProbeEntity, entity=EntitySpec(**entity))


def _is_probe(system: ActorSystem, name: str) -> bool:
    return system.agent_class(name) in (ProbeAgent, ProbeEntity)


class _Probes(Mapping[str, TestProbe]):
    def __init__(self, system: ActorSystem) -> None:
        self._system = system

    def _names(self) -> list[str]:
        return [n for n in self._system.names() if _is_probe(self._system, n)]

    def __getitem__(self, name: str) -> TestProbe:
        try:
            is_probe = _is_probe(self._system, name)
        except UnknownAgent:
            is_probe = False
        if not is_probe:
            raise KeyError(f"no probe named {name!r} in this system (probes: {self._names()})")
        return _probe_for(self._system, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def probes(system: ActorSystem) -> Mapping[str, TestProbe]:
    """The probes of ``system`` by name: ``probes(system)["audit-sink"]``.

    Raises KeyError (naming the probes there are) for a name that is not a probe.
    """
    return _Probes(system)


def add_probe(system: ActorSystem, name: str = "probe") -> TestProbe:
    """Start a probe under the root of a running ``system`` (a live reload) and return it.

    Raises ValueError if the name is taken, and :class:`SystemNotRunning`.
    """
    root = system.root_spec
    system.apply(structs.replace(root, children=(*root.children, probe_spec(name))))
    return probes(system)[name]
