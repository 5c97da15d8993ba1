"""Child process of benchmarks/tracing.py: tell throughput and ask rate of one counter.

Run by path, so that ``vibe_actors`` is whichever checkout PYTHONPATH names first
(the baseline's or this one's)::

    PYTHONPATH=SRC python benchmarks/_tracing_child.py MODE TELLS ASKS REPEATS

MODE: ``plain`` (no tracing code touched: the baseline, or tracing never
configured), ``on`` (the SDK with ParentBased(TraceIdRatioBased(RATIO)), RATIO
from OTEL_TRACES_SAMPLER_ARG, spans batched to an in-memory exporter; the sends
are made outside any trace), ``traced`` (as ``on``, each send in a root span of
its own, as an edge such as an HTTP request starts one: RATIO of them sampled). Prints
one JSON object: tell_per_s and ask_per_s, each the best of REPEATS.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import structlog

import vibe_actors as va

perf = time.perf_counter


class Inc(va.Message):
    pass


class Count(va.Message):
    n: int


class Counter(va.Agent):
    def on_start(self) -> None:
        self.n = 0

    @va.handler
    def inc(self, msg: Inc) -> Count:
        self.n += 1
        return Count(n=self.n)


def _trace_on() -> tuple[object, object]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from vibe_actors import tracing

    ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "0.01"))
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracing.enable(provider)
    return provider, exporter


def _in_root_spans(send: Callable[[Any], Any]) -> Callable[[Any], Any]:
    from vibe_actors import tracing

    start = tracing.tracer().start_as_current_span

    def traced(message: Any) -> Any:
        with start("edge"):
            return send(message)

    return traced


def main() -> None:
    mode, tells, asks, repeats = sys.argv[1], *map(int, sys.argv[2:5])
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # silent
    traced = _trace_on() if mode in ("on", "traced") else None
    tree = [va.WorkerSpec(name="counter", agent=Counter, mailbox=va.MailboxSpec(capacity=0))]
    system = va.ActorSystem(tree, va.SystemConfig(ask_timeout=60.0)).start()
    ref, msg = system.ref("counter"), Inc()
    tell, ask = ref.tell, ref.ask
    if mode == "traced":
        tell, ask = _in_root_spans(tell), _in_root_spans(ask)
    for _ in range(min(tells, 5000)):  # warm up
        tell(msg)
    ask(msg)
    best_tell = best_ask = 0.0
    for _ in range(repeats):
        started = perf()
        for _ in range(tells):
            tell(msg)
        ask(msg)  # handled after every tell: all are done
        best_tell = max(best_tell, tells / (perf() - started))
        started = perf()
        for _ in range(asks):
            ask(msg)
        best_ask = max(best_ask, asks / (perf() - started))
    system.shutdown()
    spans = 0
    if traced is not None:
        provider, exporter = traced
        provider.force_flush()  # type: ignore[attr-defined]
        spans = len(exporter.get_finished_spans())  # type: ignore[attr-defined]
    print(json.dumps({"tell_per_s": best_tell, "ask_per_s": best_ask, "spans": spans}))


if __name__ == "__main__":
    main()
