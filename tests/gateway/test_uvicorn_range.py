"""uvicorn is pinned to the range the gateway's tests pass with (it subclasses uvicorn internals)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import uvicorn

ROOT = Path(__file__).resolve().parents[2]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_the_pin_the_oldest_run_and_the_installed_uvicorn_agree() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in dependencies if d.startswith("uvicorn")]
    found = re.fullmatch(r"uvicorn\[standard\]>=([\d.]+),<([\d.]+)", spec)
    assert found, f"uvicorn must have a lower and an upper bound: {spec!r}"
    lower, upper = found.groups()
    oldest = re.search(r"^UVICORN_OLDEST \?= ([\d.]+)$", (ROOT / "Makefile").read_text(), re.M)
    assert oldest, "the Makefile names the oldest uvicorn it tests (make test-uvicorn-oldest)"
    assert _version(oldest.group(1)) == _version(lower) + (0,) * (3 - len(_version(lower)))
    assert _version(lower) <= _version(uvicorn.__version__) < _version(upper)
