"""The audit agent's settings, messages, replies and event (re-exported by
:mod:`vibe_actors.agents.audit`); other agents import them from here.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from vibe_actors import ErrorReply, Message, RuntimeEvent
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


class Recent(Message):
    """The newest ``limit`` audit records."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = 100


class AuditRecords(Message):
    """Audit records, oldest first; each ``data`` is an event with its ``type``."""

    records: list[Record]


class VerifyNow(Message):
    """Verify the audit chain now (otherwise done every ``verify_interval``)."""


class AuditVerified(Message):
    """The verdict; ``broken_at`` is the first bad seq when ``ok`` is false."""

    ok: bool
    count: int
    broken_at: int | None = None


class AuditUnavailable(ErrorReply):
    """The ledger could not answer (its reply is in ``detail``)."""

    http_status: ClassVar[int] = 503


class AuditChainBroken(RuntimeEvent):
    """The audit trail's chain no longer verifies: record ``broken_at`` was altered or removed."""

    ledger: str
    stream: str
    broken_at: int | None
