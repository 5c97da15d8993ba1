"""The webhooks agent's subscriptions file (``<data_dir>/webhooks/<name>.json``).

Written atomically (a temporary file, fsync, rename) with mode 0600, since
it holds the secrets; read once at start. Used from the agent's thread only.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

__all__ = ["Subscription", "load", "save"]


class Subscription(msgspec.Struct, frozen=True):
    id: str
    topic: str
    url: str
    secret: str

    def __repr__(self) -> str:
        return f"Subscription(id={self.id!r}, topic={self.topic!r}, secret=<redacted>)"


class _Stored(msgspec.Struct, frozen=True):
    subscriptions: list[Subscription]


def load(path: Path | None) -> dict[str, Subscription]:
    if path is None or not path.exists():
        return {}
    stored = msgspec.json.decode(path.read_bytes(), type=_Stored)
    return {sub.id: sub for sub in stored.subscriptions}


def save(path: Path, subscriptions: list[Subscription]) -> None:
    """Atomically replace ``path`` (mode 0600: it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(msgspec.json.encode(_Stored(subscriptions)))
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
