"""Child process of the ledger crash test: appends from several threads until killed.

Usage: ``python -m tests.vibe_actors.system_agents.ledger.ledger_child DATA_DIR [THREADS]``.
Prints ``ready`` once the system runs, then one ``stream seq hash`` line per
acknowledged append (flushed at once, so the parent sees every ack it was
given). Logs go to stderr. Exits by itself after a minute if nobody kills it.
"""

from __future__ import annotations

import sys
import threading
import time

import structlog

from vibe_actors import ActorSystem, AskError, SystemConfig, WorkerSpec
from vibe_actors.agents.ledger import Append, Ledger

_LIFETIME = 60.0


def main() -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    data_dir = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    system = ActorSystem(
        [WorkerSpec(name="ledger", agent=Ledger)],
        SystemConfig(data_dir=data_dir, ask_timeout=30.0),
    ).start()
    ledger = system.ref("ledger")
    out = sys.stdout
    lock = threading.Lock()
    stop_at = time.monotonic() + _LIFETIME

    def writer(index: int) -> None:
        n = 0
        while time.monotonic() < stop_at:
            try:
                ack = ledger.ask(Append(stream=f"w{index % 3}", data={"writer": index, "n": n}))
            except AskError as exc:
                print(f"ask failed: {exc}", file=sys.stderr, flush=True)
                return
            with lock:
                out.write(f"{ack.stream} {ack.seq} {ack.hash}\n")
                out.flush()
            n += 1

    print("ready", flush=True)
    workers = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    system.shutdown(timeout=5.0)


if __name__ == "__main__":
    main()
