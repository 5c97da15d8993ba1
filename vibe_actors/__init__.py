"""vibe_actors: supervised Pykka agents with msgspec messages.

The public surface is re-exported here; everything in ``_underscore``
modules is internal. See SEMANTICS.md for the runtime's guarantees.
"""

from vibe_actors._agent import Agent, Deferred
from vibe_actors._authz import ANONYMOUS, Authorizer, Caller
from vibe_actors._codec import (
    CodecError,
    decode_error,
    decode_json,
    decode_msgpack,
    encode_json,
    encode_msgpack,
)
from vibe_actors._deadletters import DeadLetter, DeadLetterReason, DeadLetters
from vibe_actors._errors import (
    AgentCrashedError,
    AgentHung,
    AskError,
    DeadlineExceededError,
    ForbiddenError,
    InjectedCrash,
    MailboxFullError,
    RestartIntensityExceeded,
    StartFailed,
    SystemFailed,
    SystemNotRunning,
    UnavailableError,
    UnknownAgent,
    UnknownMessageError,
    VibeError,
)
from vibe_actors._events import (
    AgentAbandoned,
    AgentCrashedEvent,
    AgentRestarted,
    DeadLettered,
    EventStream,
    RuntimeEvent,
    SupervisorGaveUp,
    TreeReloaded,
)
from vibe_actors._future import ReplyFuture
from vibe_actors._handlers import handler
from vibe_actors._messages import (
    AgentCrashed,
    DeadlineExceeded,
    ErrorReply,
    Forbidden,
    MailboxFull,
    Message,
    Ping,
    Pong,
    Terminated,
    Unavailable,
    UnknownMessage,
)
from vibe_actors._ref import Ref
from vibe_actors._reload import ApplyReport
from vibe_actors._signals import AgentStatus
from vibe_actors._spec import (
    BRUTAL_KILL,
    BackoffSpec,
    MailboxSpec,
    Overflow,
    PoolSpec,
    RestartType,
    Routing,
    Strategy,
    SupervisorSpec,
    WorkerSpec,
)
from vibe_actors._supervisor import Supervisor
from vibe_actors._system import ActorSystem, SystemConfig
from vibe_actors._tree import TreeNode

__all__ = [
    "ANONYMOUS",
    "BRUTAL_KILL",
    "ActorSystem",
    "Agent",
    "AgentAbandoned",
    "AgentCrashed",
    "AgentCrashedError",
    "AgentHung",
    "AgentCrashedEvent",
    "AgentRestarted",
    "AgentStatus",
    "ApplyReport",
    "AskError",
    "Authorizer",
    "BackoffSpec",
    "Caller",
    "CodecError",
    "DeadLetter",
    "DeadLetterReason",
    "DeadLettered",
    "DeadLetters",
    "DeadlineExceeded",
    "DeadlineExceededError",
    "Deferred",
    "ErrorReply",
    "Forbidden",
    "ForbiddenError",
    "InjectedCrash",
    "EventStream",
    "MailboxFull",
    "MailboxFullError",
    "MailboxSpec",
    "Message",
    "Overflow",
    "Ping",
    "Pong",
    "PoolSpec",
    "Ref",
    "ReplyFuture",
    "RestartIntensityExceeded",
    "RestartType",
    "Routing",
    "RuntimeEvent",
    "StartFailed",
    "Strategy",
    "Supervisor",
    "SupervisorGaveUp",
    "SupervisorSpec",
    "SystemConfig",
    "SystemFailed",
    "SystemNotRunning",
    "Terminated",
    "TreeNode",
    "TreeReloaded",
    "Unavailable",
    "UnavailableError",
    "UnknownAgent",
    "UnknownMessage",
    "UnknownMessageError",
    "VibeError",
    "WorkerSpec",
    "decode_error",
    "decode_json",
    "decode_msgpack",
    "encode_json",
    "encode_msgpack",
    "handler",
]
