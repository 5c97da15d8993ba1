"""Child process of test_state_crash: Puts from several threads, printing each ack.

Usage: ``python state_crash_child.py DATA_DIR [WRITERS]``. Each writer owns
three keys and writes ``{"key": key, "n": n}`` as the n-th version of a key
(with ``expected_version=n - 1``), then prints ``key version`` and flushes.
It runs until it is killed.
"""

from __future__ import annotations

import sys
import threading

import structlog

from vibe_actors import ActorSystem, SystemConfig, WorkerSpec
from vibe_actors.agents.state import Put, State, Stored

KEYS_PER_WRITER = 3


def main(data_dir: str, writers: int) -> None:
    # This process is an edge: logs go to stderr so stdout carries only acks.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    system = ActorSystem(
        [WorkerSpec(name="state", agent=State)], SystemConfig(data_dir=data_dir)
    ).start()
    out = threading.Lock()

    def write(writer: int) -> None:
        versions = {f"w{writer}/k{k}": 0 for k in range(KEYS_PER_WRITER)}
        keys = list(versions)
        turn = 0
        while True:
            key = keys[turn % len(keys)]
            turn += 1
            n = versions[key] + 1
            reply = system.ask(
                "state",
                Put(key=key, value={"key": key, "n": n}, expected_version=n - 1),
                timeout=30.0,
            )
            assert reply == Stored(key=key, version=n), reply
            versions[key] = n
            with out:
                sys.stdout.write(f"{key} {n}\n")
                sys.stdout.flush()

    threads = [
        threading.Thread(target=write, args=(w,), daemon=True, name=f"writer-{w}")
        for w in range(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4)
