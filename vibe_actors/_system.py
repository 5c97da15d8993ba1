"""ActorSystem: the embedding API.

Start it from a plain script (``with ActorSystem(spec) as system: ...``), an
asyncio app (``await system.ref("x").ask_async(msg)``), or another web app.
Whatever starts a system is responsible for stopping it: :meth:`shutdown`
stops the tree last-started first, each agent within its shutdown timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

import structlog
from prometheus_client import CollectorRegistry

from vibe_actors import _dynamic_api as dynamic
from vibe_actors._agent import Agent
from vibe_actors._authz import Authorizer, Caller
from vibe_actors._cell import Cell
from vibe_actors._collector import SystemCollector
from vibe_actors._deadletters import DeadLetter, DeadLetterReason, DeadLetters
from vibe_actors._deathwatch import DeathWatch
from vibe_actors._entity import check_id, split_address
from vibe_actors._envelope import Envelope
from vibe_actors._errors import (
    StartFailed,
    SystemFailed,
    SystemNotRunning,
)
from vibe_actors._events import DeadLettered, EventStream, TreeReloaded
from vibe_actors._future import ReplyFuture, raise_for_error
from vibe_actors._messages import Unavailable
from vibe_actors._ref import Ref
from vibe_actors._reload import ApplyReport, ApplySpec
from vibe_actors._route_table import RouteTable
from vibe_actors._signals import ChildExited
from vibe_actors._spec import SupervisorSpec, WorkerSpec
from vibe_actors._stats import ChildStarts, FailureCounts
from vibe_actors._system_authz import Authorization
from vibe_actors._system_cells import CellRegistry
from vibe_actors._system_config import SystemConfig
from vibe_actors._system_dynamic import DynamicChildren
from vibe_actors._system_entities import EntityAccess
from vibe_actors._system_inspect import Introspection
from vibe_actors._timers import TimerService
from vibe_actors._tree import (
    validate_tree,
)

if TYPE_CHECKING:
    from vibe_actors._agent import M
    from vibe_actors._messages import Request

R = TypeVar("R")

__all__ = ["ActorSystem", "SystemConfig"]

T = TypeVar("T")

_log = structlog.get_logger("vibe_actors.system")


# ActorSystem has more methods than a class here should: it is the embedding API, the
# one object a program holds. Each method is a few lines over a part that owns the
# work (the route table, death-watch, failure counts, timers, the cells, the tree's
# supervisors, vibe_actors._reload); a new capability adds a part, not logic here. The
# cell registry, authorisation, entity, introspection and dynamic-children parts of the
# API are mixins in their own modules (_system_cells, _system_authz, _system_entities,
# _system_inspect, _system_dynamic).
class ActorSystem(CellRegistry, Authorization, EntityAccess, Introspection, DynamicChildren):
    """A supervision tree of agents, started from a :class:`SupervisorSpec`.

    ``root`` may also be a sequence of child specs, wrapped in a one_for_one
    root supervisor named ``root``. ``clock`` (monotonic seconds) drives
    timers, backoff and restart intensity; tests may inject their own.
    ``registry`` receives the runtime's metrics (a fresh one by default).
    """

    def __init__(
        self,
        root: SupervisorSpec
        | list[WorkerSpec | SupervisorSpec]
        | tuple[WorkerSpec | SupervisorSpec, ...],
        config: SystemConfig | None = None,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(root, SupervisorSpec):
            root = SupervisorSpec(name="root", children=tuple(root))
        validate_tree(root)
        self.root_spec = root
        self.config = config or SystemConfig()
        #: ``config.serialize_messages``, read on every send (one attribute load).
        self.serializes = self.config.serialize_messages
        self.clock = clock
        self.dead_letters = DeadLetters(
            self.config.dead_letters_kept, self.config.dead_letter_log_rate
        )
        #: Runtime events (restarts, crashes, give-ups, dead letters, reloads).
        self.events = EventStream()
        self.dead_letters.subscribe(self._dead_letter_event)
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.failure: str | None = None
        self._cells: dict[str, Cell] = {}
        #: Where a send to a name goes (every Ref's sends end there).
        self.routes = RouteTable(self._undeliverable)
        self._root: Cell | None = None
        self._timers: TimerService
        self._lock = threading.RLock()
        self._state = "new"
        #: Wall-clock time (time.time()) the system became running; None before.
        self.started_at: float | None = None
        self._done = threading.Event()
        #: Supervisors that gave up and incarnations abandoned, by name (for the metrics).
        self.failures = FailureCounts()
        #: Requests to start dynamic children, by supervisor and outcome (for the metrics).
        self.dynamic_starts = ChildStarts()
        #: Who watches whom (Agent.watch); Terminated when a watched agent stops for good.
        self.deathwatch = DeathWatch(self._cells)
        self._authorizer: Authorizer | None = None
        self.registry.register(SystemCollector(self))
        self._shared_metrics: dict[str, Any] = {}

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> ActorSystem:
        """Start the tree; returns self. Blocks until every agent confirmed its start.

        Raises :class:`StartFailed` (naming the agent, cause chained) if any
        agent fails to start; everything already started is stopped first.
        """
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"system already {self._state}")
            self._state = "starting"
        self._timers = TimerService(self.clock)
        self._root = self.make_cell(self.root_spec, None)
        try:
            self._root.start(self.config.start_timeout)
        except StartFailed:
            self._root.terminate("start failed")
            self._timers.stop()
            self._state = "stopped"
            self._done.set()
            raise
        self._state = "running"
        self.started_at = time.time()
        _log.info("system_started", agents=len(self._cells))
        return self

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop every agent, last-started first, and the timer thread.

        ``timeout`` bounds the root's own shutdown (default: the root spec's).
        Returns False if some incarnation had to be abandoned. Idempotent.
        Called from inside an agent, it runs in a new thread and returns at once.
        """
        with self._lock:
            state = self._state
        if state == "failed" and not self._is_agent_thread():
            self._done.wait(timeout if timeout is not None else 30.0)  # its teardown finishes
        with self._lock:
            if self._state in ("new", "stopping", "stopped", "failed"):
                return self._state in ("new", "stopped")
            self._state = "stopping"
        if self._is_agent_thread():
            threading.Thread(target=self._shutdown, args=(timeout,), daemon=True).start()
            return True
        return self._shutdown(timeout)

    def _shutdown(self, timeout: float | None) -> bool:
        assert self._root is not None
        abandoned_before = sum(self.failures.abandonments().values())
        clean = self._root.stop(timeout)
        self._root.terminate("shutdown")
        clean = clean and sum(self.failures.abandonments().values()) == abandoned_before
        self._timers.stop()
        self._state = "stopped"
        _log.info("system_stopped", clean=clean)
        self._done.set()
        return clean

    def __enter__(self) -> ActorSystem:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the system stops; returns False on timeout.

        Raises :class:`SystemFailed` if it stopped because the root gave up.
        """
        if not self._done.wait(timeout):
            return False
        if self.failure is not None:
            raise SystemFailed(self.failure)
        return True

    @property
    def timers(self) -> TimerService:
        """The runtime's timer service (agents' timers, the watchdog's sampling)."""
        return self._timers

    @property
    def running(self) -> bool:
        """Whether the system is started and not stopping."""
        return self._state == "running"

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has been called (the system may have stopped since).

        A send before it raises :class:`SystemNotRunning` (see :class:`Ref`).
        """
        return self._state != "new"

    def _root_exited(self, signal: ChildExited) -> None:
        # In the root supervisor's thread, after it stopped its children.
        reason = (
            "normal" if signal.error is None else f"{type(signal.error).__name__}: {signal.error}"
        )
        with self._lock:
            if self._state in ("stopping", "stopped"):
                return
            self._state = "failed"
            self.failure = reason
        _log.critical("system_failed", reason=reason)
        threading.Thread(target=self._finish_failed, daemon=True, name="vibe:failed").start()

    def _finish_failed(self) -> None:
        assert self._root is not None
        self._root.terminate(f"system failed: {self.failure}")
        self._timers.stop()
        self._done.set()

    # -- sending -------------------------------------------------------------

    @overload
    def ref(self, name: str, sender: str | None = None) -> Ref[Any]: ...

    @overload
    def ref(self, name: str, sender: str | None = None, *, agent: type[Agent[M]]) -> Ref[M]: ...

    def ref(
        self, name: str, sender: str | None = None, *, agent: type[Agent[Any]] | None = None
    ) -> Ref[Any]:
        """A ref to ``name`` (it need not exist yet: sends to unknown names are dead letters).

        ``agent`` (the class running under ``name``) only types the ref: with
        ``class Store(Agent[Put | Get])``, ``system.ref("store", agent=Store)`` is a
        ``Ref[Put | Get]``, and a type checker rejects sending it anything else.
        It is not checked at runtime (the name may not exist yet).

        ``kind/id`` names an entity (as :meth:`entity`); an invalid id raises ValueError.
        """
        address = split_address(name)
        if address is not None:
            return Ref(self, address[0], sender, check_id(address[1]))
        return Ref(self, name, sender)

    def tell(
        self,
        name: str,
        message: Any,
        *,
        request_id: str | None = None,
        caller: Caller | None = None,
    ) -> None:
        """``self.ref(name).tell(message)``."""
        self.ref(name).tell(message, request_id=request_id, caller=caller)

    @overload
    def ask(
        self,
        name: str,
        message: Request[R],
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        caller: Caller | None = None,
    ) -> R: ...

    @overload
    def ask(
        self,
        name: str,
        message: Any,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        caller: Caller | None = None,
    ) -> Any: ...

    def ask(
        self,
        name: str,
        message: Any,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        caller: Caller | None = None,
    ) -> Any:
        """``self.ref(name).ask(message)``: the reply, or an :class:`AskError`."""
        return self.ref(name).ask(message, timeout=timeout, request_id=request_id, caller=caller)

    async def ask_async(
        self,
        name: str,
        message: Any,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        caller: Caller | None = None,
    ) -> Any:
        """``await self.ref(name).ask_async(message)``."""
        return await self.ref(name).ask_async(
            message, timeout=timeout, request_id=request_id, caller=caller
        )

    def _dead_letter_event(self, letter: DeadLetter) -> None:
        self.events.publish(
            DeadLettered(
                agent=letter.recipient,
                reason=letter.reason.value,
                message_type=letter.message_type,
                at=letter.at,
            )
        )

    def _undeliverable(self, name: str, envelope: Envelope) -> None:
        if envelope.reply is not None:
            envelope.reply.resolve(Unavailable(agent=name, reason="unknown agent"))
        self.dead_letters.publish(name, envelope, DeadLetterReason.UNKNOWN_AGENT)

    def apply(self, new_root: SupervisorSpec, timeout: float = 300.0) -> ApplyReport:
        """Live reload: change the running tree to ``new_root``, touching only what changed.

        Unchanged agents keep running with their state and mailboxes; removed
        ones stop (last-started first), changed ones restart with their new
        spec, added ones start in order. The new tree is validated first: an
        invalid one raises (ValueError/TypeError) and changes nothing.
        Raises :class:`SystemNotRunning` unless the system is running, and
        ValueError if the root's name differs.
        """
        if self._state != "running" or self._root is None:
            raise SystemNotRunning("apply() needs a running system")
        if new_root.name != self.root_spec.name:
            raise ValueError(
                f"the root is {self.root_spec.name!r}; cannot rename it to {new_root.name!r}"
            )
        validate_tree(new_root)
        dynamic.check_reload(self, self.root_spec, new_root)
        future = ReplyFuture(new_root.name, timeout)
        self._root.mailbox.put_system(Envelope(ApplySpec(new_root), future))
        report: ApplyReport = raise_for_error(future.wait())
        self.root_spec = new_root
        self.events.publish(
            TreeReloaded(
                added=report.added,
                removed=report.removed,
                changed=report.changed,
                failed=report.failed,
            )
        )
        _log.info(
            "system_reloaded",
            added=len(report.added),
            removed=len(report.removed),
            changed=len(report.changed),
            failed=list(report.failed),
        )
        return report

    def shared_metrics(self, key: str, build: Callable[[CollectorRegistry], T]) -> T:
        """The metrics ``build(self.registry)`` made under ``key``, built once per system.

        An agent restarts many times, but a metric may be registered only once
        per registry: every incarnation asks for its metrics here and gets the
        same objects. ``build`` should create metrics with stable
        ``vibe_<agent>_...`` names. If it raises (a name clash), nothing is kept
        and the error propagates.
        """
        with self._lock:
            if key not in self._shared_metrics:
                self._shared_metrics[key] = build(self.registry)
            return self._shared_metrics[key]  # type: ignore[no-any-return]
