"""Signed checkpoints of the ledger's streams, in a file outside the database.

The file (default ``<data_dir>/<ledger name>.checkpoints``) holds, for every
stream, its last record's seq and hash as of a commit, and ``unkeyed_until``
(the last record written before the chain was keyed, 0 for a stream born
keyed), all signed with the ledger's checkpoint key::

    {"format": "vibe-ledger-checkpoints/1", "key_id": "<16 hex>",
     "streams": {"<stream>": {"seq": 5, "hash": "<64 hex>", "unkeyed_until": 0}},
     "mac": "<hex HMAC-SHA256 of the canonical msgpack of the other three fields>"}

One MAC covers the whole file, so no stream's entry can be dropped or
swapped for an older one of its own. Someone who can write the files but
does not hold the key can neither forge a checkpoint nor recompute the
chain, so removing records from the end of a stream (even rewriting the
stored head to match) or rewriting records leaves the chain short of, or
different from, what the checkpoint holds.

Writing: a temporary file (``.<name>.<random>.tmp``, mode 0600) is written
and fsynced, then renamed over the file; the first write of each writer
also fsyncs the directory. The ledger hands the heads to the writer only
after their commit is durable, once per commit, and a writer thread writes
the newest of them while the next batch commits (so the fsyncs of the two
files overlap instead of adding up). After a crash the file may lag the
database (the records past it still verify by their chain) but is never
ahead of it. A rename lost in a power failure leaves the previous, lagging,
file.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import msgspec

from vibe_actors import VibeError
from vibe_actors.agents.ledger._chain import MAX_SEQ, Head
from vibe_actors.agents.ledger._keys import LedgerKey, fsync_directory
from vibe_actors.store import StoreError

__all__ = [
    "CHECKPOINT_FORMAT",
    "Anchor",
    "CheckpointError",
    "CheckpointWriter",
    "CheckpointWriterStopped",
    "checkpoint_path",
    "read_checkpoint",
]

CHECKPOINT_FORMAT = "vibe-ledger-checkpoints/1"
#: A checkpoint file larger than this is refused unread (about a million streams).
_MAX_FILE = 256 << 20

_Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
_Hash = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class Anchor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A stream as checkpointed: its last record and the end of its unkeyed prefix."""

    seq: _Seq
    hash: _Hash
    unkeyed_until: _Seq = 0

    @property
    def head(self) -> Head:
        return Head(self.seq, self.hash)


class _Signed(msgspec.Struct, frozen=True):
    """The signed part of the file (encoded as canonical msgpack for the MAC)."""

    format: str
    key_id: str
    streams: dict[str, Anchor]


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: str
    key_id: str
    streams: dict[str, Anchor]
    mac: _Hash


_signer = msgspec.msgpack.Encoder(order="sorted")
_file_decoder = msgspec.json.Decoder(_File)


class CheckpointError(StoreError):
    """The checkpoint file cannot be read, written or trusted; ``path`` names it."""


class CheckpointWriterStopped(VibeError):
    """The checkpoint writer's thread died of an unexpected error (not a failed write)."""


def checkpoint_path(data_dir: str | Path, ledger: str, configured: str | None) -> Path:
    """``configured`` (relative to ``data_dir`` unless absolute), else
    ``<data_dir>/<ledger>.checkpoints``."""
    base = Path(data_dir)
    return base / configured if configured else base / f"{ledger}.checkpoints"


def _mac(key: LedgerKey, streams: dict[str, Anchor]) -> str:
    return key.checkpoint_mac(_signer.encode(_Signed(CHECKPOINT_FORMAT, key.key_id, streams)))


def read_checkpoint(path: Path, key: LedgerKey) -> dict[str, Anchor] | None:
    """The streams the file at ``path`` vouches for, or None if there is no file.

    Raises :class:`CheckpointError` if it cannot be read, is not a checkpoint
    file, was signed with another key, or its MAC does not match (it was
    altered, or forged without the key).
    """
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(path, f"cannot read the checkpoint file: {exc.strerror}") from exc
    if len(raw) > _MAX_FILE:
        raise CheckpointError(path, f"the checkpoint file is larger than {_MAX_FILE} bytes")
    try:
        found = _file_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise CheckpointError(path, f"not a checkpoint file ({exc})") from exc
    if found.format != CHECKPOINT_FORMAT:
        raise CheckpointError(path, f"unknown checkpoint format {found.format[:64]!r}")
    if found.key_id != key.key_id:
        raise CheckpointError(
            path, f"signed with another key (key id {found.key_id[:16]!r}, not {key.key_id!r})"
        )
    if not hmac.compare_digest(_mac(key, found.streams), found.mac):
        raise CheckpointError(path, "the checkpoint file's signature does not match its content")
    return found.streams


class CheckpointWriter:
    """Writes the checkpoint file atomically (see the module docstring).

    :meth:`write` writes at once, in the caller's thread. :meth:`submit`
    hands a snapshot of durably committed heads to a writer thread (started
    on first use) and returns: the ledger commits its next batch while the
    file is fsynced, and snapshots submitted meanwhile are coalesced (only
    the newest is written). A failed write is passed to ``on_error`` and the
    next snapshot is tried as usual; ``on_written`` gets each write's
    seconds. :meth:`close` writes what is still pending, then stops the thread.
    """

    def __init__(
        self,
        path: Path,
        thread_name: str,
        on_error: Callable[[CheckpointError], None],
        on_written: Callable[[float], None],
    ) -> None:
        self.path = path
        # Named per writer: a writer of an earlier incarnation still finishing never shares it.
        self._temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        self._directory_synced = False
        self._thread_name = thread_name
        self._on_error = on_error
        self._on_written = on_written
        self._changed = threading.Condition()
        self._next: tuple[LedgerKey, dict[str, Anchor]] | None = None
        self._busy = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._stopped_by: BaseException | None = None

    def write(self, key: LedgerKey, streams: dict[str, Anchor]) -> None:
        """Replace the file with ``streams`` signed by ``key``; durable when it returns.

        Raises :class:`CheckpointError` if any step fails (the previous file
        is then left as it was).
        """
        body = msgspec.json.encode(
            _File(CHECKPOINT_FORMAT, key.key_id, streams, _mac(key, streams))
        )
        try:
            if not self._directory_synced:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(
                self._temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600
            )
            try:
                os.fchmod(descriptor, 0o600)  # the same mode under any umask
                view = memoryview(body)
                while view:
                    view = view[os.write(descriptor, view) :]
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(self._temporary, self.path)
            if not self._directory_synced:
                # Once per writer: makes the file's name durable. Later renames that a
                # power failure loses leave an older file, which only lags (allowed).
                fsync_directory(self.path.parent)
                self._directory_synced = True
        except OSError as exc:
            raise CheckpointError(
                self.path, f"cannot write the checkpoint file: {exc.strerror}"
            ) from exc

    def submit(self, key: LedgerKey, streams: dict[str, Anchor]) -> None:
        """Have ``streams`` (a snapshot nobody mutates later) written soon, replacing any
        snapshot not yet written. Raises :class:`CheckpointWriterStopped` if the writer
        thread died of an unexpected error (the ledger then crashes and restarts)."""
        with self._changed:
            if self._stopped_by is not None:
                raise CheckpointWriterStopped(
                    f"{self.path}: the checkpoint writer stopped: {self._stopped_by!r}"
                ) from self._stopped_by
            self._next = (key, streams)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=self._thread_name, daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every submitted snapshot was written (or failed); False on timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: (self._next is None and not self._busy) or self._stopped_by is not None,
                timeout,
            )

    def close(self, timeout: float) -> bool:
        """Write what is pending, then stop the thread; False if it did not end in time."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: self._next is not None or self._closing)
                    if self._next is None:
                        return  # closing, nothing pending
                    (key, streams), self._next = self._next, None
                    self._busy = True
                started = time.perf_counter()
                try:
                    self.write(key, streams)
                except CheckpointError as exc:
                    self._on_error(exc)
                else:
                    self._on_written(time.perf_counter() - started)
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
        except BaseException as exc:
            # Reported to the ledger by the next submit(), and by the thread's excepthook.
            with self._changed:
                self._stopped_by = exc
                self._busy = False
                self._changed.notify_all()
            raise
