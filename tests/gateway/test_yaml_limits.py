"""YAML bombs against the gateway: refused at start and on a SIGHUP reload, one line
each, never a traceback; a refused reload is counted and the gateway keeps serving."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable

import httpx

from tests.conftest import wait_until
from tests.gateway.logs import problems
from tests.gateway.test_process import ROOT, free_port, healthy, run_gateway

RECURSIVE = "version: 1\nroot: &r\n  name: root\n  children:\n    - *r\n"
RECURSIVE_PROBLEM = (
    ":5:7: $.root.children[0]: alias *r is recursive (it names a node that contains it)"
)
# Billion laughs, 10^6 zeros: the 8th *x4 in x5 crosses MAX_ALIAS_NODES.
BOMB = "version: 1\nx1: &x1 [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\n" + "".join(
    f"x{level}: &x{level} [{', '.join([f'*x{level - 1}'] * 10)}]\n" for level in range(2, 7)
)


def metrics_show(url: str, line: str) -> Callable[[], bool]:
    return lambda: line in httpx.get(f"{url}/metrics").text


def test_a_recursive_alias_at_start_exits_1_with_one_line(tmp_path):
    wiring = tmp_path / "recursive.yaml"
    wiring.write_text(RECURSIVE)
    result = run_gateway("--wiring", str(wiring), "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert problems(result.stderr, "invalid_wiring") == [f"{wiring}{RECURSIVE_PROBLEM}"]


def test_a_reload_to_a_bomb_or_a_recursive_alias_is_counted_failed_and_serving_goes_on(
    tmp_path,
):
    wiring = tmp_path / "wiring.yaml"
    wiring.write_text(
        "version: 1\nroot:\n  name: root\n  children:\n"
        "    - name: keep\n      agent: tests.vibe_actors.agents:Worker\n"
    )
    port = free_port()
    log = tmp_path / "gateway.log"  # a file, not a pipe: a long log cannot block the gateway
    with log.open("wb") as sink:  # the gateway has its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--port", str(port), "--wiring", str(wiring),
             "--data-dir", str(tmp_path)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(url) or process.poll() is not None, 20, "the gateway")
        assert process.poll() is None, log.read_text()
        for count, text in enumerate((RECURSIVE, BOMB), start=1):
            wiring.write_text(text)
            process.send_signal(signal.SIGHUP)
            counted = f'vibe_reloads_total{{outcome="failed"}} {count}.0'
            wait_until(metrics_show(url, counted), 10, counted)
            assert httpx.post(f"{url}/v1/agents/keep/Ping", json={}).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            stopped = process.wait(15)
        finally:
            process.kill()  # a no-op once it has exited: never leave a gateway behind
    assert stopped == 0
    logs = log.read_text()
    assert "Traceback" not in logs
    assert logs.count("reload_failed") == 2
    assert RECURSIVE_PROBLEM in logs and "(limit MAX_ALIAS_NODES), crossed at alias *x4" in logs
