"""Which backend keeps the durable agents' data: the store URL, parsed and checked.

``""`` (or ``sqlite``) is the default: one SQLite file per agent in the
system's ``data_dir``. ``postgresql://user:password@host:port/dbname?...``
(``postgres://`` too, any libpq parameter in the query) is one PostgreSQL
database shared by every replica. Anything else is a :class:`StoreUrlError`
naming what is wrong, raised where the URL comes in (the gateway's
``--store``, the wiring's ``system.store``) so that a typo is one clear line
at start, not a degraded agent later.

The password never leaves this module: :attr:`StoreLocation.shown` is the
URL without it, for logs, metrics and replies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

import psycopg
from psycopg.conninfo import conninfo_to_dict

__all__ = ["StoreLocation", "StoreUrlError", "parse_store_url"]

_SQLITE = ("", "sqlite", "sqlite:", "sqlite://")
_POSTGRES = ("postgresql://", "postgres://")


class StoreUrlError(ValueError):
    """The store URL is not one this version understands; the message says why (never
    quoting a password)."""


class StoreLocation(NamedTuple):
    """A parsed store URL: ``kind``, the ``url`` to connect with, and ``shown`` (no password)."""

    kind: Literal["sqlite", "postgresql"]
    url: str
    shown: str

    @property
    def shared(self) -> bool:
        """Whether other processes (replicas) may write the same data."""
        return self.kind == "postgresql"


SQLITE = StoreLocation("sqlite", "", "sqlite")


def parse_store_url(url: str) -> StoreLocation:
    """The backend ``url`` names; raises :class:`StoreUrlError` saying what is wrong."""
    text = url.strip()
    if text.lower() in _SQLITE:
        return SQLITE
    if not text.lower().startswith(_POSTGRES):
        scheme = text.split("://", 1)[0] if "://" in text else text[:16]
        raise StoreUrlError(
            f"store URL scheme {scheme!r} is not supported: use postgresql://... "
            "or leave it empty for the SQLite files in the data directory"
        )
    try:
        params = conninfo_to_dict(text)
    except psycopg.ProgrammingError as exc:
        # libpq's message may quote the URL: keep only its first line, password removed.
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreUrlError(f"invalid PostgreSQL URL: {_without_password(reason, text)}") from exc
    return StoreLocation("postgresql", text, _shown(params))


def _shown(params: Mapping[str, object]) -> str:
    user = params.get("user")
    host = params.get("host") or ""
    port = params.get("port")
    dbname = params.get("dbname") or ""
    where = f"{user}@" if user else ""
    if isinstance(host, str) and host.startswith("/"):
        return f"postgresql://{where}/{dbname}?host={host}"
    return f"postgresql://{where}{host}{f':{port}' if port else ''}/{dbname}"


def _without_password(reason: str, url: str) -> str:
    password = conninfo_password(url)
    return reason.replace(password, "***") if password else reason


def conninfo_password(url: str) -> str:
    """The password written in ``url``'s userinfo, or ""."""
    rest = url.split("://", 1)[-1].split("/", 1)[0]
    userinfo = rest.rpartition("@")[0]
    return userinfo.partition(":")[2]
