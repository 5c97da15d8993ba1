"""What the ledger answers from its stored rows: the records of a ``Read`` or ``Tail``,
and what ``Verify`` finds.

Used from the ledger agent's thread only (it passes its store, chain state and
logger); see :mod:`vibe_actors.agents.ledger` for the contract.
"""

from __future__ import annotations

from typing import Any

import msgspec

from vibe_actors.agents.ledger._chain import Head, Row, verify_rows
from vibe_actors.agents.ledger._integrity import ChainState
from vibe_actors.agents.ledger._store import LedgerStore
from vibe_actors.agents.ledger.protocol import LedgerUnavailable, Record, Records, Verified

__all__ = ["records", "verified"]


def records(stream: str, rows: list[Row], log: Any) -> Records | LedgerUnavailable:
    """``rows`` of ``stream`` decoded; ``LedgerUnavailable`` (logged) if one cannot be."""
    found = []
    for row in rows:
        try:
            data = msgspec.msgpack.decode(row.data)
        except (msgspec.DecodeError, TypeError) as exc:
            log.error("ledger_record_unreadable", stream=stream, seq=row.seq, error=str(exc))
            return LedgerUnavailable(
                detail=f"record {row.seq} of {stream!r} cannot be decoded (run Verify): {exc}"
            )
        found.append(Record(seq=row.seq, data=data, hash=row.hash, ts=row.ts))
    return Records(stream=stream, records=found)


def verified(
    store: LedgerStore, chain: ChainState, stream: str, expected: Head | None, log: Any
) -> Verified:
    """``Verify``'s answer for ``stream``: its chain recomputed with the key, reaching
    ``expected`` (the committed head) and its checkpoint; a break is logged."""
    anchor = chain.anchors.get(stream)
    check = verify_rows(
        store.chain(stream),
        chain.key,
        expected=expected,
        anchor=None if anchor is None else anchor.head,
        unkeyed_until=chain.unkeyed_until(stream),
    )
    reason = check.reason
    if check.ok:
        # The chain itself holds, but what vouches for its completeness does not.
        reason = chain.problem or chain.held.get(stream)
    if reason is not None:
        log.error("ledger_chain_broken", stream=stream, broken_at=check.broken_at, reason=reason)
    return Verified(
        stream=stream,
        ok=reason is None,
        count=check.count,
        head=check.head,
        broken_at=check.broken_at,
        reason=reason,
    )
