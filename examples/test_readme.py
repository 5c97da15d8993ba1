"""The README's commands, as written: the Server-Sent Events lines of "What to try
next" run against the shipped wiring, and examples/embedded.py as its docstring says."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import phoenix
from gateway import AppSettings, GatewayServer, create_app, uvicorn_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def try_next() -> list[str]:
    """The lines of the README's "What to try next" shell block (continuations joined)."""
    section = README.read_text().split("## What to try next", 1)[1]
    block = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    return block.replace("\\\n", " ").splitlines()


def sse_lines() -> list[str]:
    """From the line that defines $J to the one that stops the event stream."""
    lines = try_next()
    first = next(i for i, line in enumerate(lines) if line.startswith("J="))
    stream = next(i for i, line in enumerate(lines) if "/v1/topics/news/events" in line)
    publish = next(i for i, line in enumerate(lines) if "pubsub/Publish" in line)
    last = next((i for i in range(publish, len(lines)) if "kill" in lines[i]), publish)
    return [lines[first], *lines[stream : last + 1]]


def test_the_publish_waits_until_the_stream_is_subscribed():
    lines = sse_lines()
    publish = next(i for i, line in enumerate(lines) if "pubsub/Publish" in line)
    # Backgrounded, the stream may subscribe after the publish: the event would be lost.
    waits = [line for line in lines[2:publish] if ": subscribed" in line and "until" in line]
    assert waits, f"nothing waits for the stream's ': subscribed' line before: {lines[publish]}"
    assert "kill" in lines[-1], "the stream started in the background is never stopped"


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    """``make run``: the shipped wiring, served by the gateway on a free port."""
    system = phoenix.boot(ROOT / "wiring.yaml", data_dir=str(tmp_path))
    server = GatewayServer(uvicorn_config(create_app(system, AppSettings()), "127.0.0.1", 0))
    thread = threading.Thread(target=server.run, name="readme-gateway", daemon=True)
    thread.start()
    try:
        assert server.started_event.wait(10), "the gateway did not start"
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        assert system.shutdown(timeout=15)


def test_the_server_sent_events_lines_show_the_published_event(port: int, tmp_path: Path):
    script = "\n".join(sse_lines()).replace("localhost:8000", f"127.0.0.1:{port}")
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True, text=True, timeout=30, env={**os.environ, "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "event: message" in result.stdout
    event = re.search(r"^data: (.*)$", result.stdout, re.M)
    assert event is not None and '"data":"hello"' in event.group(1), result.stdout


def test_embedded_py_says_how_to_run_it_and_runs_so():
    docstring = (ROOT / "examples" / "embedded.py").read_text().split('"""')[1]
    command = re.findall(r"``([^`]+)``", docstring)[0]
    assert command == ".venv/bin/python examples/embedded.py", docstring
    argv = shlex.split(command)
    result = subprocess.run(
        [sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "refused: Overdrawn" in result.stdout and "after restart:" in result.stdout
