"""The ledger's secret key: where it lives, how it is made, what it signs.

The key is 32 (or more) random bytes kept as hex text in a file of its own,
outside the database (default ``<data_dir>/keys/<ledger name>.key``, the
``keys`` directory made owner-only). It is never logged, never put in a
reply or an exception, and :class:`LedgerKey` keeps only keys derived from
it (its ``repr`` shows the public ``key_id`` only).

Derived keys (HMAC-SHA256 of a fixed label under the secret) separate the
uses, so a MAC made for one can never be passed off as the other:

* the chain key: ``hash = HMAC(chain key, previous hash + canonical record)``;
* the checkpoint key: the MAC of the signed checkpoint file;
* ``key_id``: 16 hex digits naming the key (safe to show; it reveals nothing
  of the secret), stored in the database and the checkpoint file so a
  ledger started with another key is told so instead of reporting tampering.

A key file is created only when none exists: 32 bytes from
:func:`secrets.token_bytes`, written to a temporary file opened with
``O_CREAT | O_EXCL`` and mode 0600, fsynced, then hard-linked to its name
(which fails instead of replacing a key that appeared meanwhile) and the
directory fsynced. A crash midway leaves at most a temporary file, never a
half-written key.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import NamedTuple

from vibe_actors.store import StoreError

__all__ = [
    "KEY_BYTES",
    "KeyFileError",
    "LedgerKey",
    "LoadedKey",
    "fsync_directory",
    "key_path",
    "load_key",
]

#: Bytes of a generated key; a key file may hold more, never fewer.
KEY_BYTES = 32
#: A key file larger than this is not a key file (and is not read whole).
_MAX_KEY_FILE = 4096
_LABEL_CHAIN = b"vibe-ledger/1 record chain"
_LABEL_CHECKPOINT = b"vibe-ledger/1 checkpoint"
_LABEL_KEY_ID = b"vibe-ledger/1 key id"


class KeyFileError(StoreError):
    """The key file cannot be read, created or used; ``path`` names it.

    The reason never holds key material. The ledger degrades (see
    :func:`vibe_actors.store._store.degrade_for`) rather than chain records
    with a key it cannot keep.
    """


class LedgerKey:
    """The keys derived from a ledger's secret (the secret itself is not kept)."""

    __slots__ = ("_chain", "_checkpoint", "key_id")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < KEY_BYTES:
            raise ValueError(f"a ledger key needs at least {KEY_BYTES} bytes")
        self._chain = hmac.digest(secret, _LABEL_CHAIN, "sha256")
        self._checkpoint = hmac.digest(secret, _LABEL_CHECKPOINT, "sha256")
        self.key_id = hmac.digest(secret, _LABEL_KEY_ID, "sha256").hex()[:16]

    def __repr__(self) -> str:
        return f"LedgerKey(key_id={self.key_id!r})"

    def chain_mac(self, message: bytes) -> str:
        """Hex HMAC-SHA256 of ``message`` (previous hash + canonical record) for the chain."""
        return hmac.digest(self._chain, message, "sha256").hex()

    def checkpoint_mac(self, message: bytes) -> str:
        """Hex HMAC-SHA256 of ``message`` (a checkpoint's signed part)."""
        return hmac.digest(self._checkpoint, message, "sha256").hex()


class LoadedKey(NamedTuple):
    """What :func:`load_key` found: the key, whether it was just made, the file's mode."""

    key: LedgerKey
    created: bool
    #: The permission bits when the file is readable or writable by others than its owner.
    exposed_mode: int | None


def key_path(data_dir: str | Path, ledger: str, configured: str | None) -> Path:
    """Where ledger ``ledger`` keeps its key: ``configured`` (relative to ``data_dir``
    unless absolute), else ``<data_dir>/keys/<ledger>.key``."""
    base = Path(data_dir)
    return base / configured if configured else base / "keys" / f"{ledger}.key"


def load_key(path: Path, *, may_create: bool) -> LoadedKey:
    """Read the key at ``path``; when there is none and ``may_create``, make one.

    Raises :class:`KeyFileError` if the file cannot be read, does not hold at
    least :data:`KEY_BYTES` bytes as hex, is missing while ``may_create`` is
    false (the ledger already chains with a key: a new one would not verify
    its records), or cannot be created.
    """
    if not path.exists():
        if not may_create:
            raise KeyFileError(
                path,
                "the key file is missing but this ledger's records are chained with a key: "
                "restore the key file from its backup",
            )
        created = _create_key_file(path)
        if created:
            return LoadedKey(_read_key(path), True, None)
    key = _read_key(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise KeyFileError(path, f"cannot stat the key file: {exc.strerror}") from exc
    return LoadedKey(key, False, mode if mode & 0o077 else None)


def _read_key(path: Path) -> LedgerKey:
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise KeyFileError(path, f"cannot read the key file: {exc.strerror}") from exc
    if len(raw) > _MAX_KEY_FILE:
        raise KeyFileError(path, f"the key file is larger than {_MAX_KEY_FILE} bytes")
    try:
        secret = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        # Not chained (`from None`): the exception's text could quote the file's content.
        raise KeyFileError(path, "the key file does not hold a key as hex digits") from None
    if len(secret) < KEY_BYTES:
        raise KeyFileError(
            path, f"the key file holds {len(secret)} bytes; a key needs at least {KEY_BYTES}"
        )
    return LedgerKey(secret)


def _create_key_file(path: Path) -> bool:
    """Make a key file at ``path``; False if another one appeared there meanwhile."""
    directory = path.parent
    temporary = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        if not directory.is_dir():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)  # whatever the umask took away or left
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(descriptor, 0o600)  # the same mode under any umask
            os.write(descriptor, secrets.token_bytes(KEY_BYTES).hex().encode("ascii") + b"\n")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        try:
            os.link(temporary, path)  # unlike a rename, never replaces an existing key
            linked = True
        except FileExistsError:
            linked = False  # a key was made meanwhile (another incarnation): that one is used
        finally:
            os.unlink(temporary)
        fsync_directory(directory)
    except OSError as exc:
        raise KeyFileError(path, f"cannot create the key file: {exc.strerror}") from exc
    return linked


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (a new name in it) durable; raises OSError."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
