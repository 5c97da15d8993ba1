"""The webhooks agent's subscriptions file (``<data_dir>/webhooks/<name>.json``).

Written atomically (a temporary file, fsync, rename) with mode 0600 in a 0700
directory, since it holds the secrets (see :mod:`vibe_actors._files`);
read once at start. Used from the agent's thread only.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from vibe_actors import Caller
from vibe_actors._files import tighten, write_private_atomically

__all__ = ["Subscription", "load", "save"]


class Subscription(msgspec.Struct, frozen=True):
    id: str
    topic: str
    url: str
    secret: str
    #: Who subscribed (None: trusted code, or a file written before callers were kept);
    #: it counts against that principal's ``max_subscriptions_per_caller``.
    caller: Caller | None = None

    def __repr__(self) -> str:
        return f"Subscription(id={self.id!r}, topic={self.topic!r}, secret=<redacted>)"


class _Stored(msgspec.Struct, frozen=True):
    subscriptions: list[Subscription]


def load(path: Path | None) -> dict[str, Subscription]:
    """The saved subscriptions, by id (none without a file).

    A file or directory an older version left readable by others is made
    private first. Raises ``OSError`` or ``msgspec.DecodeError`` if the file
    cannot be tightened, read or decoded.
    """
    if path is None or not tighten(path):
        return {}
    tighten(path.parent)
    stored = msgspec.json.decode(path.read_bytes(), type=_Stored)
    return {sub.id: sub for sub in stored.subscriptions}


def save(path: Path, subscriptions: list[Subscription]) -> None:
    """Atomically replace ``path`` (mode 0600 in a 0700 directory: it holds secrets).

    Raises ``OSError`` if it cannot be written (``path`` is then unchanged).
    """
    write_private_atomically(path, msgspec.json.encode(_Stored(subscriptions)))
