"""Entity: the base class of a virtual agent, addressed by kind and id.

An entity kind (``WorkerSpec(name="carts", agent=Cart, entity=EntitySpec())``)
is served by a few shard agents; each shard hosts many entities in its one
thread (:mod:`vibe_actors._entity_shard`). An entity is activated by its
first message, passivated when idle or when its kind holds too many, and its
``state`` (a msgspec Struct) is loaded on activation and, for durable kinds,
saved after every message that changed it, before the reply is sent.

An entity is behaviour plus a little state: handlers (``@handler``, as for
agents), the hooks :meth:`Entity.on_activate` and :meth:`Entity.on_passivate`,
and the handler API below, which reaches the runtime only through its shard.
It costs what its object and its state cost: no thread, no mailbox.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic

import msgspec
import structlog

from vibe_actors._handlers import collect_handlers, return_types
from vibe_actors._messages import Message

if TYPE_CHECKING:
    from vibe_actors._authz import Caller
    from vibe_actors._entity_shard import Shard
    from vibe_actors._envelope import Envelope
    from vibe_actors._ref import Ref
    from vibe_actors._system import ActorSystem

__all__ = ["Entity", "EntitySnapshot", "InspectEntity", "entity_address", "split_address"]

S = typing.TypeVar("S")

#: The longest entity id (characters).
MAX_ID_LENGTH = 256


def entity_address(kind: str, entity_id: str) -> str:
    """``kind/id``: the name an entity goes by in dead letters, logs and ``system.ref``."""
    return f"{kind}/{entity_id}"


def split_address(name: str) -> tuple[str, str] | None:
    """``(kind, id)`` for ``kind/id``, else None (agent names never contain ``/``)."""
    kind, slash, entity_id = name.partition("/")
    if not slash:
        return None
    return kind, entity_id


def check_id(entity_id: object) -> str:
    """``entity_id`` if it is a valid id; raises ValueError naming the rule otherwise."""
    if not isinstance(entity_id, str) or not entity_id or len(entity_id) > MAX_ID_LENGTH:
        raise ValueError(
            f"invalid entity id {entity_id!r}: a non-empty string of at most "
            f"{MAX_ID_LENGTH} characters"
        )
    return entity_id


class InspectEntity(Message):
    """Ask an entity's shard what it holds for the entity (does not activate it)."""


class EntitySnapshot(Message):
    """An entity's state as its shard holds it (``GET /v1/entities/{kind}/{id}``).

    ``state`` is the active instance's state as plain data (``msgspec.to_builtins``:
    what its JSON says); for an entity not active, the saved state of a durable
    kind (None if it has none), None for a memory kind.
    """

    id: str
    active: bool
    state: Any = None


class Entity(Generic[S]):
    """Base class of every entity (a virtual agent: one instance per id, on demand).

    Declare the state as the type parameter, a msgspec Struct whose fields all
    have defaults (a new id starts from ``State()``)::

        class CartState(msgspec.Struct):
            items: dict[str, int] = {}

        class Cart(Entity[CartState]):
            @handler
            def add(self, msg: AddItem) -> Added:
                self.state = msgspec.structs.replace(self.state, items={...})
                return Added(...)

    Handlers are ``@handler`` methods as for agents; a handler's return value is
    the reply. ``self.state`` may be replaced or mutated in place: for a durable
    kind, a state that differs after a message (compared by its encoding) is
    saved before the reply is sent.

    Failure contract:

    * A handler that raises crashes this entity only: the asker gets
      :class:`AgentCrashed`, the instance is dropped, and the next message
      activates a fresh one (state reloaded from the store for a durable kind;
      a memory kind starts again from ``State()``). The other entities of its
      shard keep running.
    * :meth:`on_activate` raising fails that activation: the message's asker gets
      :class:`AgentCrashed`; the next message tries again.
    * The runtime constructs entities itself; an ``__init__`` override takes no
      arguments and must call ``super().__init__()``.
    """

    __slots__ = ("__dict__", "_last_used", "_shard", "_version", "id", "state")

    #: The state's msgspec Struct, from ``Entity[State]`` (None: no state).
    State: ClassVar[type | None] = None
    _handlers: ClassVar[dict[type, Callable[..., Any]]] = {}
    #: ``on_unhandled`` when a subclass overrides it, else None.
    _unhandled_hook: ClassVar[Callable[..., Any] | None] = None

    id: str
    state: Any
    _shard: Shard
    _last_used: float
    #: Durable kinds: the version of ``state`` (see vibe_actors._entity_store); unset otherwise.
    _version: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = collect_handlers(cls)
        fallback = cls.on_unhandled
        cls._unhandled_hook = None if fallback is Entity.on_unhandled else fallback
        state = _state_type(cls)
        if state is not None:
            cls.State = state

    # -- construction (by a shard only) ------------------------------------

    @classmethod
    def hosted_by(cls, shard: Shard, entity_id: str, state: Any) -> Entity[Any]:
        """A new instance for ``entity_id`` in ``shard`` (its ``__init__`` runs here).

        An exception from ``__init__`` propagates (the shard fails the activation).
        """
        entity = cls.__new__(cls)
        entity._shard = shard  # noqa: SLF001 - the class builds its own instance
        entity.id = entity_id
        entity.state = state
        entity.__init__()  # type: ignore[misc]
        return entity

    @classmethod
    def handler_table(cls) -> dict[type, Callable[..., Any]]:
        """Message type -> handler function of this class (shared, read-only)."""
        return cls._handlers

    @classmethod
    def unhandled_hook(cls) -> Callable[..., Any] | None:
        """``on_unhandled`` if this class overrides it, else None (unhandled is refused)."""
        return cls._unhandled_hook

    @classmethod
    def handler_for(cls, message_type: type) -> Callable[..., Any] | None:
        """The handler function of ``message_type`` (None if it has none)."""
        return cls._handlers.get(message_type)

    @classmethod
    def new_state(cls) -> Any:
        """The state of an id seen for the first time: ``State()`` (None without a State)."""
        return None if cls.State is None else cls.State()

    @classmethod
    def message_types(cls) -> tuple[type[Message], ...]:
        """The public message types this entity handles (its protocol)."""
        return tuple(t for t in cls._handlers if issubclass(t, Message))

    @classmethod
    def reply_types(cls, message_type: type) -> tuple[type, ...]:
        """The reply types the handler of ``message_type`` declares (its return annotation)."""
        fn = cls._handlers.get(message_type)
        return () if fn is None else return_types(fn)

    def __init__(self) -> None:
        try:
            self._shard  # noqa: B018 - set by hosted_by; missing means user construction
        except AttributeError:
            raise TypeError(
                f"{type(self).__qualname__}(): entities are created by the runtime: declare "
                "the kind (WorkerSpec(..., entity=EntitySpec())) and talk to an entity "
                "through system.entity(kind, id)"
            ) from None

    # -- what a handler may use ------------------------------------------

    @property
    def kind(self) -> str:
        """The entity kind's name (the WorkerSpec's name)."""
        return self._shard.kind

    @property
    def address(self) -> str:
        """``kind/id``: this entity's name in logs, dead letters and ``system.ref``."""
        return entity_address(self._shard.kind, self.id)

    @property
    def system(self) -> ActorSystem:
        """The system this entity runs in."""
        return self._shard.system

    @property
    def config(self) -> Any:
        """The kind's settings (its ``Config`` struct, as for agents)."""
        return self._shard.entity_config

    @property
    def log(self) -> structlog.typing.FilteringBoundLogger:
        """A logger bound to this entity (kind, id); built on use, not kept."""
        return structlog.get_logger("vibe_actors.entity").bind(  # type: ignore[no-any-return]
            agent=self._shard.kind, entity=self.id
        )

    @property
    def envelope(self) -> Envelope | None:
        """The envelope being handled (request id, sender, deadline), else ``None``."""
        return self._shard.current_envelope()

    @property
    def caller(self) -> Caller | None:
        """On whose behalf the message being handled was sent (None: trusted code)."""
        env = self._shard.current_envelope()
        return env.caller if env is not None else None

    def ref(self, name: str) -> Ref[Any]:
        """A ref to an agent (or ``kind/id`` entity); sends carry this entity as sender."""
        return self._shard.system.ref(name, sender=self.address)

    def passivate(self) -> None:
        """Passivate this entity after the current message (its next message activates it
        again). Durable state is saved as after any message."""
        self._shard.passivate_later(self.id)

    def start_timer(self, key: Any, message: Any, delay: float, *, repeat: bool = False) -> None:
        """Send ``message`` to this entity after ``delay`` s (every ``delay`` s if ``repeat``).

        Replaces a timer with the same key. Timers end with the activation:
        passivation (and a crash of the entity or of its shard) cancels them.
        For a wake-up that survives passivation, use a scheduler reminder
        targeting ``kind/id``: it activates the entity when due.
        """
        self._shard.start_entity_timer(self.id, key, message, delay, repeat)

    def cancel_timer(self, key: Any) -> bool:
        """Cancel the timer ``key``; returns whether one was active."""
        return self._shard.cancel_entity_timer(self.id, key)

    # -- lifecycle hooks ---------------------------------------------------

    def on_activate(self) -> None:
        """Runs in the shard's thread after the state was loaded, before the first message.

        If it raises, the activation fails: the message that caused it gets
        :class:`AgentCrashed` and the next message tries again.
        """

    def on_unhandled(self, message: Any) -> Any:
        """The fallback handler: override it to handle messages no ``@handler`` takes.

        Not overridden, such a message is refused (:class:`UnknownMessage`, dead
        letter ``unhandled``). Overridden, it runs like a handler (its return
        value is the reply; raising crashes this entity). Test probes use it.
        """

    def on_passivate(self) -> None:
        """Runs in the shard's thread before the instance is dropped (idle, ``max_active``,
        :meth:`passivate`, shutdown). A durable state it changes is saved. If it raises,
        the error is logged and the passivation completes."""


def _state_type(cls: type) -> type | None:
    """The ``S`` of ``class X(Entity[S])`` (X's own bases only), else None."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Entity):
            (state,) = typing.get_args(base)
            if state is Any:  # Entity[Any]: no state
                return None
            if not (isinstance(state, type) and issubclass(state, msgspec.Struct)):
                raise TypeError(
                    f"{cls.__qualname__}: the state in Entity[...] must be a msgspec.Struct "
                    f"class, got {state!r}"
                )
            try:
                state()
            except TypeError as exc:
                raise TypeError(
                    f"{cls.__qualname__}: every field of {state.__qualname__} needs a default "
                    f"(a new entity starts from {state.__qualname__}()): {exc}"
                ) from None
            return state
    return None
