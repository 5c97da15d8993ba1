"""Exceptions: one class per failure mode, each documented where it is raised."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentCrashedError",
    "AgentHung",
    "AskError",
    "ChildEscalated",
    "DeadlineExceededError",
    "EntityConflictError",
    "ForbiddenError",
    "InjectedCrash",
    "MailboxFullError",
    "NotAMessage",
    "NameTaken",
    "NotDynamic",
    "RestartIntensityExceeded",
    "SelfAsk",
    "StashOverflow",
    "StartFailed",
    "SupervisorFull",
    "SystemFailed",
    "SystemNotRunning",
    "UnavailableError",
    "UnknownAgent",
    "UnknownMessageError",
    "VibeError",
]


class VibeError(Exception):
    """Base of every exception raised by vibe_actors."""


class AskError(VibeError):
    """An ask was answered with an :class:`~vibe_actors.ErrorReply`.

    Raised by :meth:`Ref.ask`, :meth:`Ref.ask_async` and
    :meth:`ReplyFuture.result`. ``reply`` holds the error reply itself (a
    message, so it can be re-sent, logged or mapped to an HTTP status).
    Agent-defined error replies raise this base class; the runtime's own
    replies raise the subclasses below.
    """

    def __init__(self, reply: Any) -> None:
        super().__init__(f"{type(reply).__name__}: {_describe(reply)}")
        self.reply = reply


def _describe(reply: Any) -> str:
    fields = getattr(reply, "__struct_fields__", ())
    return ", ".join(f"{f}={getattr(reply, f)!r}" for f in fields if getattr(reply, f) != "")


class AgentCrashedError(AskError):
    """The handler raised while handling this ask (reply :class:`AgentCrashed`)."""


class MailboxFullError(AskError):
    """The target's bounded mailbox refused or dropped the ask (reply :class:`MailboxFull`)."""


class DeadlineExceededError(AskError):
    """No reply within the ask's timeout (reply :class:`DeadlineExceeded`)."""


class EntityConflictError(AskError):
    """Another replica saved a newer state of the entity: this message's change was not saved
    (reply :class:`EntityConflict`); retrying runs it on the newer state."""


class UnavailableError(AskError):
    """The target is unknown or stopped (reply :class:`Unavailable`)."""


class ForbiddenError(AskError):
    """The caller the ask was sent for may not send it there (reply :class:`Forbidden`)."""


class UnknownMessageError(AskError):
    """The target has no handler for the message type (reply :class:`UnknownMessage`)."""


class AgentHung(VibeError):
    """The failure an agent is given when the watchdog declares it hung.

    ``stack`` is the stuck thread's stack at the time (``sys._current_frames``);
    the supervisor then handles it like a crash: a fresh incarnation takes over
    the same name and mailbox, and the stuck thread is abandoned.
    """

    def __init__(self, agent: str, reason: str, stack: str | None) -> None:
        super().__init__(f"{agent} hung: {reason}")
        self.agent = agent
        self.reason = reason
        self.stack = stack


class InjectedCrash(VibeError):
    """Raised inside an agent's handler by fault injection (``ActorSystem.inject_fault``)."""


class StartFailed(VibeError):
    """An agent's ``on_start`` raised or did not confirm within its start timeout.

    Raised by :meth:`ActorSystem.start` when the initial tree cannot start; the
    original exception is chained as ``__cause__``. ``path`` names the agent,
    from the root down (``root/storage/ledger``).
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path} failed to start: {reason}")
        self.path = path
        self.reason = reason


class RestartIntensityExceeded(VibeError):
    """A supervisor saw more than ``intensity`` restarts within ``period``.

    The supervisor stops its children and fails with this error, which its own
    supervisor handles like any child failure (escalation). The message names
    the supervisor, its limit, the last failure (and the child it came from)
    and what to change to tolerate more: ``setting`` (default: raise the
    supervisor's ``SupervisorSpec(intensity=...)`` or shorten its ``period``,
    or its ``intensity:``/``period:`` in the wiring file). The defaults are OTP's,
    1 restart in 5 s, so a second crash within 5 s gives up.
    """

    def __init__(
        self,
        supervisor: str,
        intensity: int,
        period: float,
        last: str,
        *,
        child: str | None = None,
        setting: str | None = None,
    ) -> None:
        if setting is None:
            setting = (
                f"raise intensity or shorten period: SupervisorSpec(name={supervisor!r}, "
                f"intensity=..., period=...), or intensity: / period: of {supervisor!r} "
                "in the wiring file"
            )
        restarts = "restart" if intensity == 1 else "restarts"
        failure = last if child is None else f"child {child!r}, {last}"
        super().__init__(
            f"supervisor {supervisor!r} gave up: more than {intensity} {restarts} "
            f"within {period:g}s (its limit: intensity={intensity}, period={period:g}); "
            f"last failure: {failure}; to tolerate more restarts, {setting}"
        )
        self.supervisor = supervisor
        self.intensity = intensity
        self.period = period
        self.last = last
        self.child = child
        self.setting = setting


class SystemFailed(VibeError):
    """The root supervisor gave up: the whole system has stopped.

    Raised by :meth:`ActorSystem.wait` (and :meth:`ActorSystem.start` if the root
    fails while starting); ``reason`` is the root's failure.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"actor system failed: {reason}")
        self.reason = reason


class SystemNotRunning(VibeError):
    """The operation needs a started system (call :meth:`ActorSystem.start`)."""


class UnknownAgent(VibeError, LookupError):
    """No agent of that name exists in the system (raised by lookups, not by sends)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no agent named {name!r}")
        self.name = name


class SelfAsk(VibeError):
    """A blocking ask that could never be answered, refused at the send.

    Raised by :meth:`Ref.ask` (and ``system.ask``) in an agent's own thread when
    the reply could only come from that thread: the agent asked itself
    (``self.ref(self.name).ask(...)``, in a handler or in ``on_start``), or it
    asked an agent that is itself blocked in an ask of this one (a cycle of two:
    A's handler asks B, whose handler asks A). Without this check the thread
    would wait until the ask's deadline and then crash on the
    :class:`DeadlineExceededError`. ``agent`` is the asker; ``via`` is the other
    agent of a cycle (None: it asked itself). Not detected: a longer cycle
    (A -> B -> C -> A), an ask through a pool, ``ask_future(...).wait()``.
    """

    def __init__(self, agent: str, via: str | None = None) -> None:
        if via is None:
            what = f"agent {agent!r} asked itself from its own thread"
        else:
            what = (
                f"agent {agent!r} asked {via!r} from its own thread while {via!r} is "
                f"blocked in an ask of {agent!r} (an ask cycle)"
            )
        super().__init__(
            f"{what}: the reply could only come from this thread, which would wait for "
            "it until the deadline; use tell(), ask_future(callback=...), or reply "
            "later with defer()"
        )
        self.agent = agent
        self.via = via


class NotAMessage(VibeError, TypeError):
    """A send of a value that cannot be a message: a builtin (dict, list, str, a number, None).

    Raised by :meth:`Ref.tell`, :meth:`Ref.ask`, :meth:`Ref.ask_future` and
    :meth:`Ref.ask_async` before anything is sent. Messages are
    :class:`~vibe_actors.Message` subclasses (private msgspec Structs or classes
    are fine for what an agent sends itself).
    """

    def __init__(self, value: object) -> None:
        kind = type(value).__name__
        super().__init__(
            f"cannot send a {kind} ({value!r:.80}): send a vibe_actors.Message subclass "
            f"(class MyMessage(Message): ...)"
        )
        self.value = value


class StashOverflow(VibeError):
    """:meth:`Agent.stash` beyond the agent's ``stash_capacity``.

    Raised in the handler that stashed: it crashes the incarnation (as Akka's
    StashOverflowException does), and the supervisor decides.
    """

    def __init__(self, agent: str, capacity: int) -> None:
        super().__init__(
            f"{agent}: the stash is full ({capacity} messages); unstash, or raise "
            "stash_capacity on the agent class"
        )
        self.agent = agent
        self.capacity = capacity


class NameTaken(VibeError, ValueError):
    """An agent of that name already exists, anywhere in the system.

    Raised by :meth:`ActorSystem.start_child` (a dynamic child's name must be
    free: names are one namespace, pool workers ``<pool>.<i>`` included, and a
    name held by a stopped transient child still counts), and by
    :meth:`ActorSystem.make_cell`. A ValueError too, as it always was. The
    name is free again once its agent is terminated or removed.
    """

    def __init__(self, name: str, holder: str | None = None) -> None:
        where = "" if holder is None else f" (at {holder})"
        super().__init__(f"an agent named {name!r} already exists{where}; names are unique")
        self.name = name
        self.holder = holder


class SupervisorFull(VibeError):
    """A dynamic supervisor already runs ``limit`` children (its ``max_children``).

    Raised by :meth:`ActorSystem.start_child`; nothing was started. Children
    restarting count, as in Elixir's DynamicSupervisor. ``setting`` says what
    to change to allow more (the gateway answers 429 ``too-many-children``).
    """

    def __init__(self, supervisor: str, limit: int) -> None:
        self.setting = (
            f"raise max_children: SupervisorSpec(name={supervisor!r}, max_children=...), or "
            f"max_children: of {supervisor!r} in the wiring file; or terminate a child"
        )
        super().__init__(
            f"dynamic supervisor {supervisor!r} is full: it runs its limit of {limit} "
            f"children (max_children={limit}); to allow more, {self.setting}"
        )
        self.supervisor = supervisor
        self.limit = limit


class NotDynamic(VibeError):
    """The operation needs a dynamic supervisor, or a dynamic child, and got another agent.

    Raised by :meth:`ActorSystem.start_child` when ``supervisor`` is not a
    supervisor declared ``dynamic`` (``kind`` is ``"supervisor"``), and by
    :meth:`ActorSystem.terminate_child` when ``name`` was not started by
    ``start_child`` (``kind`` is ``"child"``): an agent declared in the tree is
    never stopped that way; remove it from the tree and reload instead.
    """

    def __init__(self, name: str, kind: str) -> None:
        if kind == "supervisor":
            text = (
                f"{name!r} is not a dynamic supervisor: declare it with dynamic: true "
                "(SupervisorSpec(dynamic=True)) to start children in it at run time"
            )
        else:
            text = (
                f"{name!r} is not a dynamic child (it is declared in the tree): "
                "remove it from the tree and reload to stop it"
            )
        super().__init__(text)
        self.name = name
        self.kind = kind


class ChildEscalated(VibeError):
    """A child's handler raised an exception its directives escalate (Directive.ESCALATE).

    Raised in the child's supervisor, which fails with it: its own supervisor
    then decides (restarting it restarts all its children; at the root the
    system fails). ``child`` names the agent, ``__cause__`` is its exception.
    """

    def __init__(self, supervisor: str, child: str, error: BaseException) -> None:
        super().__init__(
            f"{supervisor}: {child} raised {type(error).__name__}: {error} (escalated by its "
            "directives)"
        )
        self.supervisor = supervisor
        self.child = child
        self.error = error


class StoppedByDirective(VibeError):
    """A child's handler raised an exception its directives stop it for (Directive.STOP).

    Reported to the supervisor as the child's failure: the child stops for good,
    whatever its restart type, and it does not count toward restart intensity.
    """

    def __init__(self, child: str, error: BaseException) -> None:
        super().__init__(f"{child} stopped by its directives after {type(error).__name__}: {error}")
        self.child = child
        self.error = error
