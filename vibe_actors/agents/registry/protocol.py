"""The registry agent's settings, messages, replies and their bounds (re-exported by
:mod:`vibe_actors.agents.registry`, which is where to import them from).

Other agents import these names from here, never the agent's package. Some of
them have namesakes in other agents (``Subscribe``...): the OpenAPI document
names those schemas by the module they are imported from, :mod:`vibe_actors.agents.registry`
(see :func:`vibe_actors.agents.schema.openapi`).

Every string a client sends is a :data:`Name` (at most :data:`MAX_NAME_LENGTH`
characters) and a ``Register`` names at most :data:`MAX_CAPABILITIES`
capabilities: a decoded message past a bound is a validation error (a 422 at
the gateway naming the field, and the bound is in the OpenAPI schema). The
agent checks the same bounds, and that no string is empty
(:func:`out_of_bounds`), in every message it handles and answers
``InvalidRegistration`` (422). The empty string is left to that check, not to
the schema, so an empty name stays the ``InvalidRegistration`` it has always
been, decoded or built in process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar

import msgspec

from vibe_actors import ActorSystem, AgentStatus, ErrorReply, Message, UnknownAgent
from vibe_actors._messages import namespaced

__all__ = [
    "MAX_CAPABILITIES",
    "MAX_NAME_LENGTH",
    "Entry",
    "Find",
    "Found",
    "InvalidRegistration",
    "Lookup",
    "Name",
    "Register",
    "Registered",
    "Registration",
    "RegistryChanged",
    "RegistryConfig",
    "RegistryNotSaved",
    "TooManyNames",
    "TooManyRegistrySubscriptions",
    "Unregister",
    "Unregistered",
    "out_of_bounds",
    "presence",
    "Subscribe",
    "Subscribed",
    "Unsubscribe",
    "Unsubscribed",
    "NoSuchAgent",
    "NotFound",
    "NotSubscribed",
]


_tag = namespaced("registry")


class _Message(Message, tag=_tag):
    """Base of the registry agent's messages: tagged ``registry.<ClassName>`` on the wire,
    named by the class name over HTTP."""


class _ErrorReply(ErrorReply, tag=_tag):
    """Base of the registry agent's error replies, tagged like its messages."""


#: The longest agent name or capability accepted (as the other agents' names).
MAX_NAME_LENGTH = 256
#: The most capabilities one registration names.
MAX_CAPABILITIES = 64

#: An agent name or a capability, as a client sends it (not empty: see the module docstring).
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)]
Capabilities = Annotated[list[Name], msgspec.Meta(max_length=MAX_CAPABILITIES)]


def out_of_bounds(*, capabilities: Sequence[str] = (), **fields: str) -> str | None:
    """What breaks the bounds first among ``fields`` (field -> value) and ``capabilities``,
    or None if they fit. A decoded message is held to them already; this is for one
    built in process."""
    if len(capabilities) > MAX_CAPABILITIES:
        return f"{len(capabilities)} capabilities are more than {MAX_CAPABILITIES}"
    for field, value in [*fields.items(), *(("capability", c) for c in capabilities)]:
        if not value:
            return f"the {field} must not be empty"
        if len(value) > MAX_NAME_LENGTH:
            return f"the {field} is longer than {MAX_NAME_LENGTH} characters"
    return None


# -- settings ---------------------------------------------------------------------------


class Entry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A static registration from the configuration."""

    name: Name
    capabilities: Capabilities = []


class RegistryConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`~vibe_actors.agents.registry.Registry`."""

    entries: list[Entry] = []
    persist: bool = True
    #: Seconds between checks for pending agents while the system is starting.
    recheck_interval: float = 0.05
    #: Names held at most (visible and pending): a ``Register`` of a new name past it is
    #: ``TooManyNames`` (429).
    max_names: Annotated[int, msgspec.Meta(gt=0)] = 100_000
    #: (capability, subscriber) pairs held at most (visible and pending): a ``Subscribe``
    #: of a new pair past it is ``TooManyRegistrySubscriptions`` (429).
    max_subscriptions: Annotated[int, msgspec.Meta(gt=0)] = 100_000

    def __post_init__(self) -> None:
        if self.recheck_interval <= 0:
            raise ValueError("recheck_interval must be > 0")
        if self.max_names <= 0:
            raise ValueError(f"max_names must be > 0, got {self.max_names}")
        if self.max_subscriptions <= 0:
            raise ValueError(f"max_subscriptions must be > 0, got {self.max_subscriptions}")
        if len(self.entries) > self.max_names:
            raise ValueError(
                f"{len(self.entries)} static entries are more than max_names ({self.max_names})"
            )
        for entry in self.entries:
            problem = out_of_bounds(name=entry.name, capabilities=entry.capabilities)
            if problem is not None:
                raise ValueError(f"static entry {entry.name[:MAX_NAME_LENGTH]!r}: {problem}")


# -- messages ---------------------------------------------------------------------------


class Register(_Message):
    name: Name
    capabilities: Capabilities = []


class Registered(_Message):
    name: str
    capabilities: list[str]


class Unregister(_Message):
    name: Name


class Unregistered(_Message):
    name: str


class Lookup(_Message):
    name: Name


class Registration(_Message):
    name: str
    capabilities: list[str]
    registered_at: float  #: wall-clock time (time.time()) of the registration


class Find(_Message):
    capability: Name


class Found(_Message):
    capability: str
    names: list[str]


class RegistryChanged(_Message):
    """Told to subscribers: the agents that now offer ``capability`` (sorted)."""

    capability: str
    names: list[str]


# -- replies ----------------------------------------------------------------------------


class InvalidRegistration(_ErrorReply):
    """An empty name or capability; or, in a message built in process, one longer than
    ``MAX_NAME_LENGTH`` or more than ``MAX_CAPABILITIES`` capabilities."""

    http_status: ClassVar[int] = 422


class RegistryNotSaved(_ErrorReply):
    http_status: ClassVar[int] = 503


class TooManyNames(_ErrorReply):
    """A ``Register`` of a new name while ``limit`` names are held."""

    limit: int
    http_status: ClassVar[int] = 429


class TooManyRegistrySubscriptions(_ErrorReply):
    """A ``Subscribe`` of a new (capability, subscriber) pair while ``limit`` pairs are
    held; ``Unsubscribe`` frees a slot. (Not ``TooManySubscriptions``: the webhooks
    agent's reply has that name.)"""

    limit: int
    http_status: ClassVar[int] = 429


# -- messages of the same names as other agents' (see the module docstring)


class Subscribe(_Message):
    """Tell ``subscriber`` ``RegistryChanged`` whenever the agents of ``capability`` change."""

    capability: Name
    subscriber: Name


class Subscribed(_Message):
    capability: str
    names: list[str]


class Unsubscribe(_Message):
    capability: Name
    subscriber: Name


class Unsubscribed(_Message):
    capability: str
    subscriber: str


class NoSuchAgent(_ErrorReply):
    """No running agent is called ``agent``."""

    agent: str
    http_status: ClassVar[int] = 404


class NotFound(_ErrorReply):
    name: str
    http_status: ClassVar[int] = 404


class NotSubscribed(_ErrorReply):
    capability: str
    subscriber: str
    http_status: ClassVar[int] = 404


def presence(system: ActorSystem, name: str) -> str:
    """``"alive"`` (running or being restarted), ``"dead"`` (stopped for good) or ``"absent"``."""
    try:
        status = system.status(name)
    except UnknownAgent:
        return "absent"
    return "dead" if status is AgentStatus.STOPPED else "alive"
