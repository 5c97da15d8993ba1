"""Child specs: the supervision tree as plain data.

A tree is a :class:`SupervisorSpec` whose ``children`` are :class:`WorkerSpec`
and nested :class:`SupervisorSpec` values, started left to right and stopped
right to left. Defaults follow Erlang/OTP (intensity 1 in 5 s, permanent
children, 5 s shutdown for workers, infinity-like for supervisors) unless
noted. Specs are frozen msgspec Structs: compare them with ``==`` to diff two
trees (live reload does exactly that).
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

__all__ = [
    "BRUTAL_KILL",
    "BackoffSpec",
    "Directive",
    "EntitySpec",
    "EntityState",
    "MailboxSpec",
    "Overflow",
    "PoolSpec",
    "RestartType",
    "Routing",
    "Strategy",
    "SupervisorSpec",
    "WorkerSpec",
]


class Strategy(enum.StrEnum):
    """Which siblings restart when one child fails."""

    ONE_FOR_ONE = "one_for_one"  #: only the failed child
    ONE_FOR_ALL = "one_for_all"  #: every child: all stopped (reverse), all started (in order)
    REST_FOR_ONE = "rest_for_one"  #: the failed child and those started after it


class RestartType(enum.StrEnum):
    """When a child that stopped is restarted."""

    PERMANENT = "permanent"  #: always
    TRANSIENT = "transient"  #: only after a failure, not after a normal stop
    TEMPORARY = "temporary"  #: never; it is removed from the tree


class Directive(enum.StrEnum):
    """What a handler's exception does (Akka's supervisor decider), per exception type.

    Declared on the agent class (``directives = {ValueError: Directive.RESUME}``)
    or its WorkerSpec (which wins); the most specific class in the exception's
    MRO decides; an exception no directive names restarts, as always.
    """

    RESUME = "resume"  #: keep the incarnation and its state; the asker gets HandlerFailed
    RESTART = "restart"  #: a crash: the supervisor restarts it (the default)
    STOP = "stop"  #: the agent stops for good, whatever its restart type
    ESCALATE = "escalate"  #: its supervisor fails with it (the parent decides)


class Overflow(enum.StrEnum):
    """What a full bounded mailbox does with a new message."""

    REJECT = "reject"  #: refuse it: an ask gets MailboxFull at once, a tell is a dead letter
    DROP_OLDEST = "drop_oldest"  #: accept it and drop the oldest queued message
    DROP_NEWEST = "drop_newest"  #: drop the new message (a dead letter)
    BLOCK = "block"  #: the sender waits up to ``block_timeout``, then as ``reject``


class Routing(enum.StrEnum):
    """How a pool picks the worker for a message."""

    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"  #: fewest messages queued + in progress (idle wins)
    CONSISTENT_HASH = "consistent_hash"  #: by the message field named ``hash_key``


#: ``shutdown`` value meaning: do not wait for the child to finish its message.
BRUTAL_KILL = "brutal_kill"


class MailboxSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Mailbox bound. ``capacity`` 0 means unbounded."""

    capacity: int = 0
    overflow: Overflow = Overflow.REJECT
    block_timeout: float = 1.0

    def __post_init__(self) -> None:
        if self.capacity < 0:
            raise ValueError(f"mailbox capacity must be >= 0, got {self.capacity}")
        if self.block_timeout < 0:
            raise ValueError(f"mailbox block_timeout must be >= 0, got {self.block_timeout}")


class BackoffSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Restart backoff (Akka's formula).

    The n-th consecutive restart of a child (n = 0 for the first) waits
    ``0`` when n == 0, else ``min(max, min * 2 ** (n - 1)) * (1 + random_factor * r)``
    with r uniform in [0, 1). The count resets once the child has run
    ``reset_after`` seconds without failing.
    """

    min: float = 0.01
    max: float = 5.0
    random_factor: float = 0.2
    reset_after: float = 10.0

    def __post_init__(self) -> None:
        if self.min < 0 or self.max < self.min:
            raise ValueError(f"backoff needs 0 <= min <= max, got min={self.min} max={self.max}")
        if self.random_factor < 0:
            raise ValueError(f"backoff random_factor must be >= 0, got {self.random_factor}")
        if self.reset_after < 0:
            raise ValueError(f"backoff reset_after must be >= 0, got {self.reset_after}")


class PoolSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """N identical workers behind one name, routed in the sender's thread."""

    size: int
    routing: Routing = Routing.ROUND_ROBIN
    hash_key: str | None = None

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"pool size must be >= 1, got {self.size}")
        if self.routing is Routing.CONSISTENT_HASH and not self.hash_key:
            raise ValueError("consistent_hash routing needs hash_key (a message field name)")


class EntityState(enum.StrEnum):
    """Where an entity kind keeps its entities' state."""

    MEMORY = "memory"  #: in the process only: lost on passivation, crash or restart
    DURABLE = "durable"  #: in the store: saved after every message that changed it


class EntitySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An entity kind: entities by id, created on demand, served by ``shards`` threads.

    ``passivate_after`` (seconds; 0: never) drops an entity idle that long (it
    is passivated between 1x and 1.5x that time); beyond ``max_active``
    entities in the kind (split evenly over the shards), the least recently
    used are passivated.
    """

    shards: int = 8
    passivate_after: float = 60.0
    max_active: int = 1_000_000
    state: EntityState = EntityState.MEMORY

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= 1024:
            raise ValueError(f"entity shards must be 1..1024, got {self.shards}")
        if self.passivate_after < 0:
            raise ValueError(f"passivate_after must be >= 0 seconds, got {self.passivate_after}")
        if self.max_active < self.shards:
            raise ValueError(f"max_active must be >= shards ({self.shards}), got {self.max_active}")


class WorkerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A worker child: one agent (or a pool of them) under a name.

    ``agent`` is the Agent subclass; ``config`` is passed to it as
    ``self.config`` (validated against the class's ``Config`` by Phoenix).
    ``shutdown`` is seconds to wait for a graceful stop, or ``"brutal_kill"``.
    """

    name: str
    agent: Any
    config: Any = None
    restart: RestartType = RestartType.PERMANENT
    shutdown: float | str = 5.0
    mailbox: MailboxSpec = MailboxSpec()
    pool: PoolSpec | None = None
    #: Set for an entity kind: ``agent`` is then an Entity subclass (see EntitySpec).
    entity: EntitySpec | None = None
    #: Exception class -> Directive, over the agent class's ``directives``.
    directives: dict[Any, Directive] | None = None
    depends_on: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_shutdown(self.shutdown)
        if self.pool is not None and self.entity is not None:
            raise ValueError(f"{self.name}: a worker is a pool or an entity kind, not both")


class SupervisorSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A supervisor child: a strategy over an ordered list of children.

    More than ``intensity`` restarts within ``period`` seconds (a sliding
    window shared by all its children) make the supervisor give up: it stops
    its children in reverse order and fails to its own parent with
    :class:`~vibe_actors.RestartIntensityExceeded`. The defaults are OTP's,
    1 restart in 5 s: a second restart within 5 s gives up, and for the root
    supervisor (``ActorSystem([...])`` builds one with these defaults) that
    stops the whole system. Raise ``intensity`` (or shorten ``period``) for
    children expected to crash now and then.

    ``dynamic=True`` makes it a dynamic supervisor (Elixir's
    DynamicSupervisor): it has no static ``children`` and is ``one_for_one``;
    its children are started at run time with :meth:`ActorSystem.start_child`
    (at most ``max_children`` at a time, None: no limit) and stopped with
    :meth:`ActorSystem.terminate_child`. ``templates`` are the Agent classes
    (or ``package.module:Class`` import strings) the HTTP gateway may start
    in it, named by class name; trusted code may start any agent. Setting
    ``max_children`` or ``templates`` without ``dynamic`` raises ValueError.
    """

    name: str
    children: tuple[WorkerSpec | SupervisorSpec, ...] = ()
    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: int = 1
    period: float = 5.0
    backoff: BackoffSpec = BackoffSpec()
    restart: RestartType = RestartType.PERMANENT
    shutdown: float | str = 30.0
    depends_on: tuple[str, ...] = ()
    dynamic: bool = False
    max_children: int | None = None
    templates: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_shutdown(self.shutdown)
        if self.intensity < 0:
            raise ValueError(f"intensity must be >= 0, got {self.intensity}")
        if self.period <= 0:
            raise ValueError(f"period must be > 0, got {self.period}")
        _check_dynamic(self)
        seen: set[str] = set()
        for child in self.children:
            if child.name in seen:
                raise ValueError(f"duplicate child name {child.name!r} under {self.name!r}")
            seen.add(child.name)


def _check_dynamic(spec: SupervisorSpec) -> None:
    """A dynamic supervisor is one_for_one with no static children; only it takes
    ``max_children`` and ``templates``."""
    if not spec.dynamic:
        if spec.max_children is not None or spec.templates:
            raise ValueError(
                f"max_children and templates are for a dynamic supervisor: set dynamic "
                f"on {spec.name!r} (dynamic=True, or dynamic: true in the wiring file)"
            )
        return
    if spec.strategy is not Strategy.ONE_FOR_ONE:
        raise ValueError(
            f"a dynamic supervisor is one_for_one: {spec.name!r} has strategy "
            f"{spec.strategy.value!r} (drop strategy, or set it to one_for_one)"
        )
    if spec.children:
        raise ValueError(
            f"a dynamic supervisor has no static children: {spec.name!r} lists "
            f"{len(spec.children)}; start them with ActorSystem.start_child, or use "
            "a supervisor that is not dynamic"
        )
    if spec.max_children is not None and spec.max_children < 0:
        raise ValueError(f"max_children must be >= 0 (or None), got {spec.max_children}")


def _check_name(name: str) -> None:
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"invalid name {name!r}: use letters, digits, '-', '_' and '.'")


def _check_shutdown(shutdown: float | str) -> None:
    if isinstance(shutdown, str):
        if shutdown != BRUTAL_KILL:
            raise ValueError(f"shutdown must be seconds or 'brutal_kill', got {shutdown!r}")
    elif shutdown < 0:
        raise ValueError(f"shutdown must be >= 0 seconds, got {shutdown}")
