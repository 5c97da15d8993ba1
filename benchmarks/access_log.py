"""The access log's cost per request, in process: the gateway app called directly.

No server and no sockets: an event loop calls the ASGI app with a scope and
receive/send stubs for ``POST /v1/agents/w/Add``, ``--requests`` at a time
(a few in flight, as under load). A (the access log off) and B (on, the json
format writing to /dev/null through the log handler, as ``python -m gateway``
does) take turns for ``--runs`` rounds; each figure is the median of its
rounds, in microseconds per request. Run it pinned to one core::

    taskset -c 0 .venv/bin/python -m benchmarks.access_log [--requests 5000] [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from statistics import median
from typing import Any

import structlog

import vibe_actors as va
from gateway import AppSettings, create_app, tune_gc
from gateway._logging import configure_logging


class Add(va.Message):
    n: int


class Total(va.Message):
    total: int


class Adder(va.Agent):
    def on_start(self) -> None:
        self.total = 0

    @va.handler
    def add(self, msg: Add) -> Total:
        self.total += msg.n
        return Total(total=self.total)


SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/v1/agents/w/Add",
    "raw_path": b"/v1/agents/w/Add",
    "root_path": "",
    "query_string": b"",
    "headers": [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", b"8"),
    ],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}
BODY = {"type": "http.request", "body": b'{"n": 1}', "more_body": False}
IN_FLIGHT = 8


async def receive() -> dict[str, Any]:
    return BODY


async def send(message: dict[str, Any]) -> None:
    if message["type"] == "http.response.start" and message["status"] != 200:
        raise RuntimeError(f"status {message['status']}")


async def run(app: Any, requests: int) -> float:
    """Seconds per request, ``requests`` of them, IN_FLIGHT at a time."""

    async def client(count: int) -> None:
        for _ in range(count):
            await app(dict(SCOPE), receive, send)

    started = time.perf_counter()
    await asyncio.gather(*(client(requests // IN_FLIGHT) for _ in range(IN_FLIGHT)))
    return (time.perf_counter() - started) / (requests // IN_FLIGHT * IN_FLIGHT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the log stream for the whole run
    sys.stderr = devnull  # the json format's lines go here, through the log handler
    configure_logging("info", "json")
    sys.stderr, sys.excepthook = sys.__stderr__, sys.__excepthook__  # this script's own errors
    logging.getLogger("vibe_actors").setLevel(logging.WARNING)  # only the access log at info
    tune_gc(10_000)
    tree = va.SupervisorSpec(name="root", children=(va.WorkerSpec(name="w", agent=Adder),))
    system = va.ActorSystem(tree).start()
    try:
        off = create_app(system, AppSettings())
        on = create_app(system, AppSettings(access_log=True))
        assert off.access is None and on.access is not None
        figures: dict[str, list[float]] = {"off": [], "on": []}

        async def rounds() -> None:
            await run(off, args.requests)  # warm-up: caches, the catalogue, the loop
            await run(on, args.requests)
            for r in range(args.runs):
                order = (("off", off), ("on", on)) if r % 2 == 0 else (("on", on), ("off", off))
                for name, app in order:
                    figures[name].append(await run(app, args.requests))

        asyncio.run(rounds())
    finally:
        system.shutdown()
    a, b = median(figures["off"]) * 1e6, median(figures["on"]) * 1e6
    structlog.get_logger("bench").debug("done")
    print(f"access log off: {a:.2f} us/request (median of {args.runs} x {args.requests})")
    print(f"access log on:  {b:.2f} us/request (json to /dev/null)")
    print(f"cost: {b - a:+.2f} us/request ({(b - a) / a:+.1%})")
    for name in ("off", "on"):
        print(f"  {name} rounds (us):", " ".join(f"{x * 1e6:.2f}" for x in figures[name]))


if __name__ == "__main__":
    main()
