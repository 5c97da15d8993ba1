"""SystemConfig: the system-wide settings (a data type every layer of the core may read)."""

from __future__ import annotations

import re

import msgspec

__all__ = ["SystemConfig"]


class SystemConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """System-wide settings."""

    #: Default ask timeout (and deadline), seconds. An ask always has one.
    ask_timeout: float = 5.0
    #: How long an agent may take to confirm its start (``on_start``), seconds.
    start_timeout: float = 10.0
    #: Round-trip every sent message and reply through msgpack (Akka's
    #: ``serialize-messages``): proves messages can cross a process boundary.
    serialize_messages: bool = False
    #: Dead letters kept for inspection, and logged per second at most.
    dead_letters_kept: int = 1000
    dead_letter_log_rate: float = 10.0
    #: Where agents that keep data put their files (``VIBE_DATA_DIR`` at the edge).
    data_dir: str = "./var"
    #: Where the durable agents keep their data: "" for SQLite files in ``data_dir``, or
    #: ``postgresql://...`` for one database shared by every replica (``VIBE_STORE``).
    store: str = ""

    def __post_init__(self) -> None:
        if self.ask_timeout <= 0 or self.start_timeout <= 0:
            raise ValueError("ask_timeout and start_timeout must be > 0")

    def __repr__(self) -> str:
        # The store URL may hold a password: never in a repr, a log line or an error message.
        shown = {f: getattr(self, f) for f in self.__struct_fields__}
        shown["store"] = _PASSWORD.sub(r"\1***@", self.store)
        return "SystemConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


#: The password of a URL's userinfo (``scheme://user:password@``).
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")
