"""Shared helpers for the reliability tests: real gateway processes, load, /proc figures.

Every test here runs ``python -m gateway`` as a child process on 127.0.0.1 with
its own data directory, drives it over HTTP (httpx) and bounds every wait with
a deadline. The slow variants carry the ``reliability_full`` marker: they run
only when ``VIBE_RELIABILITY_FULL=1`` (``make reliability`` / ``make soak``);
``make test`` runs the fast ones.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_until
from tests.gateway.test_process import free_port, healthy

ROOT = Path(__file__).resolve().parents[2]
WIRINGS = Path(__file__).resolve().parent / "wirings"
FULL = os.environ.get("VIBE_RELIABILITY_FULL", "").strip().lower() in ("1", "true", "yes", "on")
#: The header every client of these tests sends: asks may wait out a restart backoff.
ASK_HEADERS = {"x-timeout-ms": "20000"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "reliability_full: slow reliability variant (runs with VIBE_RELIABILITY_FULL=1)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if FULL:
        return
    skip = pytest.mark.skip(reason="slow variant: VIBE_RELIABILITY_FULL=1 (make reliability)")
    for item in items:
        if "reliability_full" in item.keywords:
            item.add_marker(skip)


def variant(fast: Any, full: Any) -> list[Any]:
    """Parameters for a fast (CI) and a full (``reliability_full``) variant of a test.

    A tuple is several parameters (``parametrize`` with several names).
    """
    fast_values = fast if isinstance(fast, tuple) else (fast,)
    full_values = full if isinstance(full, tuple) else (full,)
    return [
        pytest.param(*fast_values, id="fast"),
        pytest.param(*full_values, id="full", marks=pytest.mark.reliability_full),
    ]


# -- the gateway process ---------------------------------------------------------


class Gateway:
    """One ``python -m gateway`` child process; its output goes to a log file."""

    def __init__(
        self, log: Path, data_dir: Path, wiring: Path, chaos: bool, args: tuple[str, ...]
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        command = [sys.executable, "-m", "gateway", "--port", str(self.port)]
        command += ["--data-dir", str(data_dir), "--wiring", str(wiring), *args]
        if chaos:
            command.append("--chaos")
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
        with open(log, "wb") as sink:  # a file, not a pipe: a full pipe would stall the server
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, env=env
            )
        self.pid = self.process.pid
        self.started = time.monotonic()

    def wait_healthy(self, timeout: float = 60) -> None:
        wait_until(
            lambda: healthy(self.url) or self.process.poll() is not None,
            timeout,
            "the gateway to start",
        )
        assert self.process.poll() is None, f"the gateway exited:\n{self.logs()[-3000:]}"

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        self.wait_healthy(timeout)
        wait_until(self.ready, timeout, "the gateway to be ready")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ask(self, agent: str, message: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
        """POST an ask; returns the JSON reply of a 200 (asserts the status)."""
        response = httpx.post(
            f"{self.url}/v1/agents/{agent}/{message}",
            json=body or {},
            headers=kw.pop("headers", ASK_HEADERS),
            timeout=kw.pop("timeout", 30),
        )
        assert response.status_code == 200, (agent, message, response.status_code, response.text)
        return response.json()

    def chaos(self, agent: str, kind: str = "crash", seconds: float | None = None) -> int:
        query = "" if seconds is None else f"?seconds={seconds}"
        response = httpx.post(f"{self.url}/v1/chaos/{agent}/{kind}{query}", timeout=10)
        return response.status_code

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of ``/metrics``: (name, sorted labels) -> value."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """The samples of metric ``name`` keyed by the value of ``label``."""
        return {
            dict(labels)[label]: value
            for (sample, labels), value in self.metrics().items()
            if sample == name and label in dict(labels)
        }

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Start gateways: ``start(wiring=..., data_dir=..., chaos=True, args=())``; all stopped after."""
    started: list[Gateway] = []

    def start(
        wiring: Path = ROOT / "wiring.yaml",
        data_dir: Path | None = None,
        chaos: bool = True,
        args: tuple[str, ...] = (),
        ready: bool = True,
    ) -> Gateway:
        data = data_dir or tmp_path / "data"
        data.mkdir(exist_ok=True)
        log = tmp_path / f"gateway-{len(started) + 1}.log"
        gateway = Gateway(log, data, wiring, chaos, args)
        started.append(gateway)
        if ready:
            gateway.wait_ready()
        return gateway

    yield start
    for gateway in started:
        gateway.close()


# -- /proc figures ---------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_and_threads(pid: int) -> tuple[int, int]:
    """(resident set in KiB, thread count) of process ``pid``."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in points) / var


# -- load -------------------------------------------------------------------------------

#: Statuses a request may get under faults: success, or "come back later" with Retry-After.
RETRYABLE = (429, 503)


@dataclass
class Load:
    """What a load run sent and got: outcomes, acknowledged writes, violations."""

    outcomes: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    #: stream -> {seq: n} of every acknowledged Append.
    appended: dict[str, dict[int, int]] = field(default_factory=dict)
    #: key -> value of every acknowledged Put (one Put per key).
    stored: dict[str, int] = field(default_factory=dict)
    #: job ids of every accepted Submit.
    jobs: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def acknowledged(self) -> int:
        return sum(len(s) for s in self.appended.values()) + len(self.stored) + len(self.jobs)

    def record(self, kind: str, response: httpx.Response | None, error: str | None) -> bool:
        """Count one answer; True if it was a 200. Anything not well-formed is a violation."""
        with self.lock:
            if response is None:
                self.outcomes[f"{kind}:{error}"] += 1
                self.violations.append(f"{kind}: {error}")
                return False
            status = response.status_code
            self.outcomes[f"{kind}:{status}"] += 1
            if status == 200:
                return True
            problem_ok = response.headers.get("content-type") == "application/problem+json"
            if status in RETRYABLE and response.headers.get("retry-after") and problem_ok:
                return False
            self.violations.append(f"{kind}: {status} {response.text[:300]}")
            return False


def writer(
    url: str,
    load: Load,
    stop: threading.Event,
    index: int,
    kinds: tuple[str, ...],
    interval: float | None = None,
) -> None:
    """One client: cycles through ``kinds`` (append, put, submit) until ``stop``.

    Closed loop by default (the next request when the previous one is
    answered); with ``interval`` an open loop: request n is due at
    ``start + n * interval`` whatever the answers took (no burst to catch up
    more than one request at a time).
    """
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=30, headers=ASK_HEADERS) as client:
        n = 0
        while not stop.is_set():
            if interval is not None:
                delay = started + n * interval - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    break
            kind = kinds[n % len(kinds)]
            n += 1
            path, body = _write_request(kind, index, n)
            sent = time.monotonic()
            try:
                response = client.post(path, json=body)
            except httpx.TransportError as exc:
                load.record(kind, None, type(exc).__name__)
                stop.wait(0.05)  # the server is gone or going: do not spin
                continue
            if load.record(kind, response, None):
                _acknowledge(load, kind, index, n, response.json())
            load.latencies.append(time.monotonic() - sent)


def _write_request(kind: str, index: int, n: int) -> tuple[str, dict[str, Any]]:
    if kind == "append":
        return "/v1/agents/ledger/Append", {"stream": f"w{index}", "data": {"n": n}}
    if kind == "put":
        return "/v1/agents/state/Put", {"key": f"w{index}/{n}", "value": n}
    assert kind == "submit", kind
    return "/v1/agents/jobs/Submit", {"kind": "echo", "args": {"n": n}}


def _acknowledge(load: Load, kind: str, index: int, n: int, reply: dict[str, Any]) -> None:
    with load.lock:
        if kind == "append":
            load.appended.setdefault(reply["stream"], {})[reply["seq"]] = n
        elif kind == "put":
            assert reply["version"] == 1, reply  # one Put per key
            load.stored[reply["key"]] = n
        else:
            load.jobs.append(reply["job_id"])


def run_writers(
    url: str,
    clients: int,
    kinds: tuple[str, ...],
    load: Load,
    stop: threading.Event | None = None,
    first: int = 0,
    interval: float | None = None,
) -> tuple[threading.Event, list[threading.Thread]]:
    """Start ``clients`` writer threads (numbered from ``first``); set the event and join them.

    ``interval``: each client sends one request per ``interval`` s (open loop).
    """
    stop = stop or threading.Event()
    threads = [
        threading.Thread(target=writer, args=(url, load, stop, i, kinds, interval), daemon=True)
        for i in range(first, first + clients)
    ]
    for thread in threads:
        thread.start()
    return stop, threads


def stop_writers(stop: threading.Event, threads: list[threading.Thread]) -> None:
    stop.set()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a client hung (no answer within its 30 s timeout)"


def missing_writes(gateway: Gateway, load: Load) -> list[str]:
    """Every acknowledged append and put read back over HTTP; returns what is missing."""
    missing: list[str] = []
    with httpx.Client(base_url=gateway.url, timeout=30, headers=ASK_HEADERS) as client:
        for stream, acked in load.appended.items():
            found: dict[int, Any] = {}
            after = 0
            while True:
                body = {"stream": stream, "after": after, "limit": 1000}
                page = client.post("/v1/agents/ledger/Read", json=body).json()["records"]
                if not page:
                    break
                found.update((r["seq"], r["data"]["n"]) for r in page)
                after = page[-1]["seq"]
            missing += [f"{stream}#{s}" for s, n in acked.items() if found.get(s) != n]
            verified = client.post("/v1/agents/ledger/Verify", json={"stream": stream}).json()
            if not verified["ok"]:
                missing.append(f"chain of {stream} broken: {verified}")
        for key, value in load.stored.items():
            got = client.post("/v1/agents/state/Get", json={"key": key})
            if got.status_code != 200 or got.json()["value"] != value:
                missing.append(f"state {key}: {got.status_code} {got.text[:200]}")
    return missing
