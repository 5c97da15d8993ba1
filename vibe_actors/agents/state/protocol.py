"""The state agent's settings, messages, replies and their bounds (re-exported by
:mod:`vibe_actors.agents.state`); other agents import them from here.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar

import msgspec

from vibe_actors import ErrorReply, Message
from vibe_actors._messages import namespaced

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_LIMIT",
    "MAX_TTL",
    "Conflict",
    "Delete",
    "Deleted",
    "Entry",
    "Get",
    "InvalidRequest",
    "Key",
    "KeyList",
    "Keys",
    "NotFound",
    "Put",
    "StateConfig",
    "Stored",
    "TooManyKeys",
    "Ttl",
    "Version",
]


_tag = namespaced("state")


class _Message(Message, tag=_tag):
    """Base of the state agent's messages: tagged ``state.<ClassName>`` on the wire,
    named by the class name over HTTP."""


class _ErrorReply(ErrorReply, tag=_tag):
    """Base of the state agent's error replies, tagged like its messages."""


MAX_KEY_LENGTH = 1024
MAX_LIMIT = 10_000
#: Ten years: a longer TTL is almost certainly a unit mistake.
MAX_TTL = 10 * 365 * 86400.0

#: No NUL character: PostgreSQL's text cannot hold one, and a key must mean the same on
#: either backend.
KEY_PATTERN = "^[^\\x00]*$"
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN)]
Version = Annotated[int, msgspec.Meta(ge=0)]
Ttl = Annotated[float, msgspec.Meta(gt=0, le=MAX_TTL)]


class StateConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`State`."""

    #: Seconds between purges of expired keys.
    sweep_interval: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    #: Largest encoded value accepted (msgpack bytes).
    max_value_bytes: Annotated[int, msgspec.Meta(gt=0)] = 1024 * 1024
    #: Keys held at most (expired ones not yet purged count): a Put of a new key past
    #: it is ``TooManyKeys`` (429).
    max_keys: Annotated[int, msgspec.Meta(gt=0)] = 1_000_000

    def __post_init__(self) -> None:
        if self.max_keys <= 0:
            raise ValueError(f"max_keys must be > 0, got {self.max_keys}")
        if not (math.isfinite(self.sweep_interval) and self.sweep_interval > 0):
            raise ValueError(
                f"sweep_interval must be a finite number > 0, got {self.sweep_interval}"
            )
        if self.max_value_bytes <= 0:
            raise ValueError(f"max_value_bytes must be > 0, got {self.max_value_bytes}")


# -- messages ---------------------------------------------------------------------


class Put(_Message):
    """Store ``value`` under ``key`` (see the module docstring for the version rules)."""

    key: Key
    value: Any
    expected_version: Version | None = None
    ttl: Ttl | None = None


class Stored(_Message):
    key: str
    version: int


class Get(_Message):
    key: Key


class Entry(_Message):
    key: str
    value: Any
    version: int
    #: Wall-clock seconds after which the key is gone; None: never.
    expires_at: float | None = None


class Delete(_Message):
    key: Key
    expected_version: Version | None = None


class Deleted(_Message):
    key: str


class Keys(_Message):
    """Live keys starting with ``prefix``, in key order, at most ``limit``."""

    prefix: Annotated[str, msgspec.Meta(max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN)] = ""
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = 100


class KeyList(_Message):
    keys: list[str]
    #: More keys match than ``limit``.
    truncated: bool


class NotFound(_ErrorReply):
    """The key does not exist (or has expired)."""

    key: str
    http_status: ClassVar[int] = 404


class Conflict(_ErrorReply):
    """``expected_version`` did not hold; ``actual`` is the current version (0: absent)."""

    key: str
    expected: int
    actual: int
    http_status: ClassVar[int] = 409


class InvalidRequest(_ErrorReply):
    """A field breaks its constraint; ``field`` names it."""

    field: str
    http_status: ClassVar[int] = 422


class TooManyKeys(_ErrorReply):
    """A Put of a new key while ``limit`` keys are held."""

    limit: int
    http_status: ClassVar[int] = 429
