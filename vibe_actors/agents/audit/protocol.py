"""The audit agent's settings, messages, replies and event (re-exported by
:mod:`vibe_actors.agents.audit`); other agents import them from here.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from vibe_actors import ErrorReply, Message, RuntimeEvent
from vibe_actors._messages import namespaced
from vibe_actors.agents.ledger.protocol import MAX_LIMIT, Record, StreamName

__all__ = [
    "AuditChainBroken",
    "AuditConfig",
    "AuditRecords",
    "AuditUnavailable",
    "AuditVerified",
    "Recent",
    "VerifyNow",
]


_tag = namespaced("audit")


class _Message(Message, tag=_tag):
    """Base of the audit agent's messages: tagged ``audit.<ClassName>`` on the wire,
    named by the class name over HTTP."""


class _ErrorReply(ErrorReply, tag=_tag):
    """Base of the audit agent's error replies, tagged like its messages."""


class AuditConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`Audit`."""

    #: The ledger agent that keeps the trail, and its stream.
    ledger: str = "ledger"
    stream: StreamName = "audit"
    #: Seconds between chain verifications.
    verify_interval: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    #: Seconds between dead-letter and policy-denial summaries.
    dead_letter_flush: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    #: How long an append may wait for the ledger (e.g. while it restarts).
    append_timeout: Annotated[float, msgspec.Meta(gt=0)] = 30.0


# -- messages -----------------------------------------------------------------------------


class Recent(_Message):
    """The newest ``limit`` audit records."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = 100


class AuditRecords(_Message):
    """Audit records, oldest first; each ``data`` is an event with its ``type``."""

    records: list[Record]


class VerifyNow(_Message):
    """Verify the audit chain now (otherwise done every ``verify_interval``)."""


class AuditVerified(_Message):
    """The verdict; ``broken_at`` is the first bad seq when ``ok`` is false."""

    ok: bool
    count: int
    broken_at: int | None = None


class AuditUnavailable(_ErrorReply):
    """The ledger could not answer (its reply is in ``detail``)."""

    http_status: ClassVar[int] = 503


class AuditChainBroken(RuntimeEvent):
    """The audit trail's chain no longer verifies: record ``broken_at`` was altered or removed."""

    ledger: str
    stream: str
    broken_at: int | None
