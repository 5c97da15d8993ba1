"""Reading the gateway's JSON log lines (every line on stderr is one object)."""

from __future__ import annotations

import json
from typing import Any


def events(text: str | bytes) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object (fails on a line that is not one)."""
    if isinstance(text, bytes):
        text = text.decode()
    parsed = []
    for line in text.splitlines():
        assert line.startswith("{"), f"not a JSON log line: {line!r}"
        parsed.append(json.loads(line))
    return parsed


def problems(text: str | bytes, event: str) -> list[str]:
    """The ``problem`` of each ``event`` error line; asserts every line is JSON."""
    found = [e for e in events(text) if e["event"] == event]
    assert all(e["level"] == "error" for e in found), found
    return [e["problem"] for e in found]
