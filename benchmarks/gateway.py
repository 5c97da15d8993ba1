"""Gateway load: POST /v1/agents/registry/Ping against a bare ASGI hello-world POST.

A third server is the reference for the actor hop alone: the smallest ASGI app
that decodes the body, asks a plain Pykka actor through a callback onto the
loop and encodes the reply (``pykka``). All three run at once under the same
uvicorn settings, pinned to core 0 (only the one under load does any work); wrk
(Debian's package) runs pinned to core 1, on 127.0.0.1 only, for a fixed time
per point. At each connection count they take turns for several rounds, in an
order that rotates each round, so a busy moment of the shared machine falls on
all; a ratio reported is the median of the rounds' ratios to bare, and each
server's figures are its medians. The target point (64 connections) gets more
rounds, since the shared machine's noise is several percent per round::

    .venv/bin/python -m benchmarks.gateway [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from statistics import median
from typing import Any

CONNECTIONS = (1, 16, 64, 256)
VARIANTS = ("bare", "pykka", "gateway")
#: The issue's target point, and how many rounds it gets (others get ``rounds``).
TARGET_CONNECTIONS, TARGET_ROUNDS = 64, 9
LUA = """
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start within {timeout}s")


def _seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(url: str, connections: int, duration: int, script: str) -> dict[str, float]:
    threads = min(connections, 2)
    command = [
        "taskset", "-c", "1", "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
        "--latency", "-s", script, url,
    ]  # fmt: skip
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=duration + 30
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s*(50|99)%\s+(\S+)", out, re.M))
    if "50" not in latency or "99" not in latency:
        raise RuntimeError(f"wrk printed no latency distribution:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": _seconds(latency["50"]) * 1e3,
        "p99_ms": _seconds(latency["99"]) * 1e3,
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def _server(variant: str) -> tuple[subprocess.Popen[bytes], int, str]:
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "benchmarks._gateway_server",
         "--variant", variant, "--port", str(port)],
    )  # fmt: skip
    path = "/v1/agents/registry/Ping" if variant == "gateway" else "/"  # the others ignore it
    return server, port, f"http://127.0.0.1:{port}{path}"


def measure(duration: int, rounds: int, script: str, target_rounds: int) -> dict[str, Any]:
    """Every variant at every connection count, in rotating rounds (see the docstring)."""
    servers = {variant: _server(variant) for variant in VARIANTS}
    try:
        for _, port, url in servers.values():
            wait_listening(port)
            run_wrk(url, 16, 1, script)  # warm-up
        runs: dict[str, dict[int, list[dict[str, float]]]] = {v: {} for v in servers}
        ratios: dict[str, dict[int, list[float]]] = {"gateway": {}, "pykka": {}}
        for c in CONNECTIONS:
            for r in range(target_rounds if c == TARGET_CONNECTIONS else rounds):
                order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]
                got = {v: run_wrk(servers[v][2], c, duration, script) for v in order}
                for variant, figures in got.items():
                    runs[variant].setdefault(c, []).append(figures)
                for variant, by_count in ratios.items():
                    by_count.setdefault(c, []).append(got[variant]["rps"] / got["bare"]["rps"])
    finally:
        for server, _, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)
    result: dict[str, Any] = {
        "ratio": {c: median(r) for c, r in ratios["gateway"].items()},
        "rounds": ratios["gateway"],
        "pykka_ratio": {c: median(r) for c, r in ratios["pykka"].items()},
        "pykka_rounds": ratios["pykka"],
    }
    for variant, by_count in runs.items():
        result[variant] = {
            c: {key: median([f[key] for f in figures]) for key in figures[0]}
            for c, figures in by_count.items()
        }
        for c, figures in by_count.items():
            result[variant][c]["non_2xx"] = sum(f["non_2xx"] for f in figures)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 s per point: proves it runs")
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian's package)")
    duration, rounds, target_rounds = (1, 1, 1) if args.quick else (2, 5, TARGET_ROUNDS)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(LUA)
    try:
        result = measure(duration, rounds, lua.name, target_rounds)
    finally:
        os.unlink(lua.name)
    bare, gateway, ratios = result["bare"], result["gateway"], result["ratio"]
    pykka, pykka_ratios = result["pykka"], result["pykka_ratio"]
    print(f"{'conns':>5} {'bare rps':>10} {'pykka rps':>10} {'gateway rps':>12} {'pykka':>6} "
          f"{'gw':>6} {'bare p50/p99 ms':>16} {'gw p50/p99 ms':>16}  gw rounds")  # fmt: skip
    for c in CONNECTIONS:
        b, p, g = bare[c], pykka[c], gateway[c]
        each = " ".join(f"{x:.2f}" for x in result["rounds"][c])
        print(f"{c:>5} {b['rps']:>10,.0f} {p['rps']:>10,.0f} {g['rps']:>12,.0f} "
              f"{pykka_ratios[c]:>6.2f} {ratios[c]:>6.2f} "
              f"{b['p50_ms']:>7.2f}/{b['p99_ms']:<8.2f} {g['p50_ms']:>7.2f}/{g['p99_ms']:<8.2f}"
              f"  {each}")  # fmt: skip
    bad = sum(r["non_2xx"] for r in gateway.values())
    if bad:
        print(f"WARNING: {bad:.0f} non-2xx responses from the gateway")
    if args.json:
        result["quick"] = args.quick
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()
