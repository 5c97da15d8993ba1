"""Opening the ledger's keyed chain: the key, the marker, the upgrade, the checkpoint.

:func:`open_chain` runs once per incarnation, after the database opened. It
decides what the ledger may trust (see the ledger's module docstring for the
guarantees); every problem is either raised as a :class:`StoreError` (the
ledger degrades: nothing may be appended safely) or kept in
:attr:`ChainState.problem` (the ledger serves, and every ``Verify`` fails
with it) or :attr:`ChainState.held` (appends to those streams are refused).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vibe_actors.agents.ledger._chain import CHAIN_RULE, Head
from vibe_actors.agents.ledger._checkpoints import (
    Anchor,
    CheckpointError,
    CheckpointWriter,
    read_checkpoint,
)
from vibe_actors.agents.ledger._keys import KeyFileError, LedgerKey, load_key
from vibe_actors.agents.ledger._store import LedgerStore
from vibe_actors.store import StoreError

__all__ = ["ChainState", "open_chain"]


class ChainState:
    """What one incarnation trusts about the chain (mutated by the ledger's thread only)."""

    def __init__(
        self,
        key: LedgerKey,
        anchors: dict[str, Anchor],
        *,
        problem: str | None = None,
        held: dict[str, str] | None = None,
        unkeyed: dict[str, int] | None = None,
    ) -> None:
        self.key = key
        #: Per stream, the last signed checkpoint (advanced after each durable commit).
        self.anchors = anchors
        #: Why the checkpoint file cannot be trusted: it is then neither used nor rewritten.
        self.problem = problem
        #: Streams that fall short of their checkpoint: appends would hide it, so none are taken.
        self.held = held or {}
        #: The database's own unkeyed prefixes, used only while ``problem`` is set.
        self._unkeyed = unkeyed or {}

    def __repr__(self) -> str:
        return (
            f"ChainState(key={self.key!r}, streams={len(self.anchors)}, problem={self.problem!r})"
        )

    def unkeyed_until(self, stream: str) -> int:
        """The last record of ``stream`` under the unkeyed rule (0: none)."""
        anchor = self.anchors.get(stream)
        if anchor is not None:
            return anchor.unkeyed_until
        return self._unkeyed.get(stream, 0)

    def advance(self, heads: dict[str, Head]) -> None:
        """Move the anchors of ``heads``' streams to these durably committed heads."""
        anchors = self.anchors
        for stream, head in heads.items():
            previous = anchors.get(stream)
            unkeyed = 0 if previous is None else previous.unkeyed_until
            anchors[stream] = Anchor(head.seq, head.hash, unkeyed)


def open_chain(
    store: LedgerStore,
    heads: dict[str, Head],
    key_file: Path,
    checkpoints: CheckpointWriter,
    log: Any,
) -> ChainState:
    """Load (or make) the key, upgrade an unkeyed database, load and check the checkpoint.

    Raises :class:`StoreError` (a :class:`KeyFileError` or
    :class:`CheckpointError` naming the file) when the ledger must not
    append: the key is missing or malformed, or is not the key the
    database's records are chained with, or the database predates keyed
    chains while a checkpoint file it does not match exists.
    """
    marker = store.marker()
    loaded = load_key(key_file, may_create=marker is None and not checkpoints.path.exists())
    key = loaded.key
    if loaded.created:
        log.warning("ledger_key_generated", key_file=str(key_file), key_id=key.key_id)
    if loaded.exposed_mode is not None:
        log.warning(
            "ledger_key_file_exposed", key_file=str(key_file), mode=oct(loaded.exposed_mode)
        )
    if marker is None:
        adopted = _adopt_unkeyed(store, key, checkpoints, log)
        if not store.shared:
            return ChainState(key, adopted)
        marker = store.marker()  # another replica may have keyed it first, with its key
        assert marker is not None
    if marker.rule != CHAIN_RULE:
        raise StoreError(store.path, f"unknown chain rule {marker.rule[:64]!r}")
    if marker.key_id != key.key_id:
        raise KeyFileError(
            key_file,
            f"holds the key {key.key_id}, but this ledger's records are chained with the key "
            f"{marker.key_id[:16]}: restore the key file from its backup",
        )
    return _checkpointed(store, heads, key, checkpoints, log)


def _checkpointed(
    store: LedgerStore,
    heads: dict[str, Head],
    key: LedgerKey,
    checkpoints: CheckpointWriter,
    log: Any,
) -> ChainState:
    """The chain of a keyed database, anchored at its signed checkpoint (with the problem
    that makes every Verify fail when the checkpoint is unusable or missing)."""
    unkeyed = store.unkeyed_prefixes()
    try:
        anchors = read_checkpoint(checkpoints.path, key)
    except CheckpointError as exc:
        log.error("ledger_checkpoint_unusable", path=exc.path, error=exc.reason)
        return ChainState(key, {}, problem=str(exc), unkeyed=unkeyed)
    if anchors is None and store.shared:
        # A replica's own checkpoint vouches for what it committed: a replica new to a shared
        # database has none yet, and starts one with its first commit.
        log.warning("ledger_checkpoint_started", path=str(checkpoints.path))
        return ChainState(key, {}, unkeyed=unkeyed)
    if anchors is None:
        problem = f"{checkpoints.path}: the checkpoint file is missing"
        log.error("ledger_checkpoint_unusable", path=str(checkpoints.path), error="missing")
        return ChainState(key, {}, problem=problem, unkeyed=unkeyed)
    held = _short_of_checkpoint(store, heads, anchors)
    for stream, why in held.items():
        log.error("ledger_stream_short_of_checkpoint", stream=stream, reason=why)
    return ChainState(key, anchors, held=held)


def _adopt_unkeyed(
    store: LedgerStore, key: LedgerKey, checkpoints: CheckpointWriter, log: Any
) -> dict[str, Anchor]:
    """Key a database written before chains were keyed (or a new one): its records so far
    stay under the unkeyed rule, pinned by a first signed checkpoint, then the marker.

    The checkpoint is written before the marker: a crash between the two
    leaves a checkpoint that matches this very proposal, and the next start
    finishes the upgrade.
    """
    proposed = {
        stream: Anchor(head.seq, head.hash, head.seq) for stream, head in store.chain_ends().items()
    }
    try:
        existing = read_checkpoint(checkpoints.path, key)
    except CheckpointError as exc:
        raise CheckpointError(
            exc.path, f"the database is not marked as keyed and {exc.reason}"
        ) from exc
    if existing is None:
        checkpoints.write(key, proposed)
    elif existing != proposed:
        raise CheckpointError(
            checkpoints.path,
            "the database is not marked as keyed but this checkpoint file vouches for other "
            "records: the database was replaced. Restore the database that goes with it (or "
            "move the checkpoint file aside to adopt this database's records as unkeyed)",
        )
    store.mark_keyed(key.key_id, {stream: anchor.seq for stream, anchor in proposed.items()})
    if proposed:
        log.warning(
            "ledger_unkeyed_records_adopted",
            streams=len(proposed),
            records=sum(anchor.seq for anchor in proposed.values()),
        )
    return proposed


def _short_of_checkpoint(
    store: LedgerStore, heads: dict[str, Head], anchors: dict[str, Anchor]
) -> dict[str, str]:
    """The streams whose stored records no longer reach their checkpoint, and why."""
    held: dict[str, str] = {}
    for stream, anchor in anchors.items():
        if anchor.seq == 0:
            continue  # vouches for nothing
        stored = store.hash_at(stream, anchor.seq)
        head = heads.get(stream)
        if stored is None:
            held[stream] = f"record {anchor.seq} (signed checkpoint) is missing"
        elif stored != anchor.hash:
            held[stream] = f"record {anchor.seq} is not the one the signed checkpoint holds"
        elif head is None or head.seq < anchor.seq:
            held[stream] = f"the stored head is behind the signed checkpoint ({anchor.seq})"
    return held
