"""State: a durable key-value store with per-key versions and optional expiry.

Protocol (``value`` is any JSON-like value: dict, list, str, int, float,
bool, None; bytes are kept as bytes):

* ``Put{key, value, expected_version=None, ttl=None}`` -> ``Stored{key, version}``
  or ``Conflict`` (409). ``expected_version`` is optimistic concurrency: the
  write happens only if the key's current version equals it, where **0 means
  "absent"** (so ``expected_version=0`` is create-only). ``None`` writes
  unconditionally. ``ttl`` (seconds) makes the key expire; a Put without
  ``ttl`` stores a key that never expires (it clears an earlier TTL).
* ``Get{key}`` -> ``Entry{key, value, version, expires_at}`` or ``NotFound`` (404).
* ``Delete{key, expected_version=None}`` -> ``Deleted{key}``, ``NotFound`` or ``Conflict``.
* ``Keys{prefix="", limit=100}`` -> ``KeyList{keys, truncated}`` in key order.
* A Put of a new key while ``max_keys`` keys are held -> ``TooManyKeys`` (429).
* Input that breaks a field's constraint (empty or over-long key, a limit
  out of range, a non-positive ttl) and got past decoding (messages built in
  process without ``serialize_messages``) -> ``InvalidRequest`` (422) naming
  the field; a value that cannot be encoded or is larger than
  ``max_value_bytes`` likewise (field ``value``).

Versions: a key's first Put gives version 1, each later Put adds 1. A
Delete removes the key entirely, history included: a later Put starts again
at version 1. A client that must not resurrect a deleted key it once saw at
version N should write with ``expected_version=0`` (create) rather than N.

Expiry uses wall-clock time (``time.time()``) and is stored with the key, so
it holds across restarts. An expired key behaves as absent at once (Get
NotFound, not listed by Keys, version 0 for ``expected_version``); its row is
purged lazily (by the Get or write that finds it) and by a sweep every
``sweep_interval`` seconds.

Durability: every acknowledged write is committed (WAL, ``synchronous=FULL``)
before the reply is sent, so an acknowledged Put or Delete survives a process
kill. Across a restart of the agent (or of the process) everything is
persisted in ``<data_dir>/<name>.db``; nothing is rebuilt.

Shared store (``store: postgresql://...``): the keys live in the PostgreSQL
namespace named after the agent, and every replica's agent of that name
serves the same keys. ``expected_version`` holds across replicas (a write
locks the key's row before it decides: of two Puts expecting one version,
whichever commits second gets ``Conflict``), and an expired key is purged,
and counted in ``vibe_state_expired_total``, by one replica only.
``max_keys`` is checked against the count this replica last read (at start
and at every sweep), so replicas may together exceed it by the keys added
between two sweeps. A read that fails for want of the database is answered
``StorageUnavailable`` (503) like a write. A database that
cannot be opened (corrupt or truncated file, unusable directory) degrades the
agent: it answers ``Unavailable`` with the reason while the rest of the
system serves; a restart tries again. A failing write at run time (disk full,
I/O error) is answered ``StorageUnavailable`` (503, naming the file) and
nothing of it is kept; the agent stays up, keeps answering reads, is
reported impaired (``/readyz`` not ready) and resumes writing by itself once
a probe write succeeds (:mod:`vibe_actors.store._health`).
"""

from __future__ import annotations

import time
from typing import ClassVar

import msgspec

from vibe_actors import Agent, _tracing, handler
from vibe_actors.agents.state._metrics import build_metrics
from vibe_actors.agents.state._store import Mismatch, StateStore
from vibe_actors.agents.state.protocol import (
    MAX_KEY_LENGTH,
    MAX_LIMIT,
    Conflict,
    Delete,
    Deleted,
    Entry,
    Get,
    InvalidRequest,
    KeyList,
    Keys,
    NotFound,
    Put,
    StateConfig,
    Stored,
    TooManyKeys,
)
from vibe_actors.store import (
    ClosesStore,
    GuardedWrites,
    StorageUnavailable,
    StoreError,
    degrade_for,
    open_store,
)

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_LIMIT",
    "Conflict",
    "Delete",
    "Deleted",
    "Entry",
    "Get",
    "InvalidRequest",
    "KeyList",
    "Keys",
    "NotFound",
    "Put",
    "State",
    "StateConfig",
    "Stored",
    "TooManyKeys",
]

# -- internal messages: plain Structs, outside the public protocol


class _Sweep(msgspec.Struct, frozen=True):
    pass


def invalid_field(msg: msgspec.Struct) -> InvalidRequest | None:
    """The first field of ``msg`` that breaks its type's constraints, as a reply.

    Decoding checks the constraints; a message built in process did not go
    through decoding, so the handler checks again (shallowly: ``Any`` values
    are not inspected).
    """
    try:
        msgspec.convert(msgspec.structs.asdict(msg), type(msg))
    except msgspec.ValidationError as exc:
        text = str(exc)
        _, _, path = text.rpartition(" - at `$.")
        field = path.rstrip("`").split(".")[0].split("[")[0] or "$"
        return InvalidRequest(field=field, detail=text)
    return None


# -- the agent ----------------------------------------------------------------------


class State(GuardedWrites, ClosesStore, Agent[Put | Get | Delete | Keys]):
    """Versioned key-value store (SQLite, or PostgreSQL shared by replicas); see the module
    docstring for guarantees.

    Protocol: ``Put`` -> ``Stored | Conflict | InvalidRequest | StorageUnavailable``;
    ``Get`` -> ``Entry | NotFound | InvalidRequest | StorageUnavailable``; ``Delete`` ->
    ``Deleted | NotFound | Conflict | InvalidRequest | StorageUnavailable``; ``Keys`` ->
    ``KeyList | InvalidRequest | StorageUnavailable``.
    """

    Config: ClassVar = StateConfig

    def on_start(self) -> None:
        self._store: StateStore | None = None
        self._metrics = self.system.shared_metrics("state", build_metrics)
        self._keys_gauge = self._metrics.keys.labels(agent=self.name)
        self._writes = {
            op: self._metrics.writes.labels(agent=self.name, op=op) for op in ("put", "delete")
        }
        self._conflicts = self._metrics.conflicts.labels(agent=self.name)
        self._expired = self._metrics.expired.labels(agent=self.name)
        try:
            self._store = open_store(StateStore, self)
            self._rows = self._store.count()
        except StoreError as exc:
            self._close()
            degrade_for(self, exc)
            return
        self._keys_gauge.set(self._rows)
        self.start_timer("sweep", _Sweep(), self.config.sweep_interval, repeat=True)
        self.log.info("state_opened", path=self._store.path, keys=self._rows)

    def _count_rows(self, delta: int) -> None:
        if delta:
            self._rows += delta
            self._keys_gauge.set(self._rows)

    @property
    def _db(self) -> StateStore:
        assert self._store is not None  # a degraded agent never reaches a handler
        return self._store

    def _probe_store_write(self) -> None:
        self._db.probe_write()

    # -- handlers -----------------------------------------------------------------

    @handler
    def put(
        self, msg: Put
    ) -> Stored | Conflict | InvalidRequest | StorageUnavailable | TooManyKeys:
        invalid = invalid_field(msg)
        if invalid is not None:
            return invalid
        try:
            blob = msgspec.msgpack.encode(msg.value)
        except (TypeError, msgspec.EncodeError, OverflowError) as exc:
            return InvalidRequest(field="value", detail=f"value cannot be stored: {exc}")
        if len(blob) > self.config.max_value_bytes:
            return InvalidRequest(
                field="value",
                detail=f"value is {len(blob)} bytes encoded, more than the "
                f"{self.config.max_value_bytes} allowed",
            )
        limit = self.config.max_keys
        try:
            full = self._rows >= limit and self._db.get(msg.key) is None
        except StoreError as exc:
            return self.read_failed(exc, "Put")
        if full:
            self._metrics.refused.labels(agent=self.name).inc()
            return TooManyKeys(limit=limit, detail=f"{limit} keys are held already")
        now = time.time()
        expires_at = None if msg.ttl is None else now + msg.ttl
        try:
            if _tracing.ON:
                with _tracing.span("store write", {"vibe.store.operation": "put"}):
                    outcome = self._db.put(msg.key, blob, msg.expected_version, expires_at, now)
            else:
                outcome = self._db.put(msg.key, blob, msg.expected_version, expires_at, now)
        except StoreError as exc:
            return self.write_failed(exc, "Put")
        self.write_succeeded()
        if isinstance(outcome, Mismatch):
            return self._conflict(msg.key, msg.expected_version, outcome.actual)
        self._writes["put"].inc()
        self._count_rows(int(outcome.added))
        return Stored(key=msg.key, version=outcome.version)

    @handler
    def get(self, msg: Get) -> Entry | NotFound | InvalidRequest | StorageUnavailable:
        invalid = invalid_field(msg)
        if invalid is not None:
            return invalid
        try:
            row = self._db.get(msg.key)
        except StoreError as exc:
            return self.read_failed(exc, "Get")
        if row is None:
            return _not_found(msg.key)
        now = time.time()
        if not row.live(now):
            self._purge(msg.key, now)  # the answer does not depend on the purge
            return _not_found(msg.key)
        return Entry(
            key=msg.key,
            value=msgspec.msgpack.decode(row.value),
            version=row.version,
            expires_at=row.expires_at,
        )

    @handler
    def delete(
        self, msg: Delete
    ) -> Deleted | NotFound | Conflict | InvalidRequest | StorageUnavailable:
        invalid = invalid_field(msg)
        if invalid is not None:
            return invalid
        try:
            if _tracing.ON:
                with _tracing.span("store write", {"vibe.store.operation": "delete"}):
                    outcome = self._db.delete(msg.key, msg.expected_version, time.time())
            else:
                outcome = self._db.delete(msg.key, msg.expected_version, time.time())
        except StoreError as exc:
            return self.write_failed(exc, "Delete")
        self.write_succeeded()
        if isinstance(outcome, Mismatch):
            return self._conflict(msg.key, msg.expected_version, outcome.actual)
        if not outcome.found:
            self._purged(outcome.removed)  # an expired row, if any
            return _not_found(msg.key)
        self._count_rows(-outcome.removed)
        self._writes["delete"].inc()
        return Deleted(key=msg.key)

    @handler
    def keys(self, msg: Keys) -> KeyList | InvalidRequest | StorageUnavailable:
        invalid = invalid_field(msg)
        if invalid is not None:
            return invalid
        try:
            keys, truncated = self._db.keys(msg.prefix, msg.limit, time.time())
        except StoreError as exc:
            return self.read_failed(exc, "Keys")
        return KeyList(keys=keys, truncated=truncated)

    @handler
    def _sweep(self, msg: _Sweep) -> None:
        try:
            removed = self._db.sweep(time.time())
            if self._db.shared:  # other replicas add and remove keys: count them again
                self._rows = self._db.count()
                self._keys_gauge.set(self._rows)
        except StoreError as exc:
            self.write_failed(exc, "sweep")  # expired keys read as absent meanwhile
            return
        self.write_succeeded()
        if removed:
            self._purged(removed)
            self.log.debug("state_swept", removed=removed)

    def _purge(self, key: str, now: float) -> None:
        try:
            removed = self._db.purge(key, now)
        except StoreError as exc:
            self.write_failed(exc, "purge")  # the row reads as absent; the sweep retries
            return
        self.write_succeeded()
        self._purged(removed)

    def _purged(self, removed: int) -> None:
        if removed:
            self._expired.inc(removed)
            self._count_rows(-removed)

    def _conflict(self, key: str, expected: int | None, actual: int) -> Conflict:
        self._conflicts.inc()
        assert expected is not None  # a mismatch needs an expectation
        return Conflict(
            key=key,
            expected=expected,
            actual=actual,
            detail=f"{key!r} is at version {actual}, not {expected}",
        )


def _not_found(key: str) -> NotFound:
    return NotFound(key=key, detail=f"no key {key!r}")
