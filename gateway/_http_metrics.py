"""HTTP metrics, counted on the event loop thread and exposed at scrape time.

``vibe_http_requests_total{route,method,status}``,
``vibe_http_request_duration_seconds{route}``, ``vibe_reloads_total{outcome}``,
``vibe_http_cut_off_total{reason}`` (requests the HTTP protocol refused before
the app: ``header_timeout``, ``body_timeout``, ``headers_too_large``),
and for Server-Sent Events ``vibe_sse_streams`` (open now),
``vibe_sse_events_total`` and ``vibe_sse_dropped_total`` (a client too slow);
from the admission (:class:`AdmissionMetrics`, gateway._admission):
``vibe_http_refused_total{reason}`` (503 problem+json answers, and connections
closed at once), ``vibe_http_idle_closed_total{reason}`` (idle connections
closed to make room), ``vibe_http_connections{state}`` (idle, busy),
``vibe_http_in_flight{kind}`` (request, probe, stream) and ``vibe_http_clients``
(client addresses connected); ``route`` is the route
template (``/v1/agents/{name}/{type}``), never the raw path, so label
cardinality stays bounded.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway._admission import IDLE_CLOSE_REASONS, REFUSAL_REASONS, Admission

__all__ = ["CUT_OFF_REASONS", "AdmissionMetrics", "HttpMetrics"]

#: Values of ``vibe_http_cut_off_total{reason}`` (gateway._protocol).
CUT_OFF_REASONS = ("header_timeout", "body_timeout", "headers_too_large")

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _RouteTimes:
    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(_BUCKETS) + 1)
        self.total = 0.0


class HttpMetrics(Collector):
    """Counters for one gateway app; written only from its event loop thread."""

    def __init__(self, streams: Callable[[], tuple[int, int, int]] | None = None) -> None:
        #: () -> (open streams, events sent, events dropped), read at scrape time.
        self._streams = streams
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests: dict[tuple[str, str, int], int] = {}
        self._times: dict[str, _RouteTimes] = {}
        self._reloads: dict[str, int] = {"ok": 0, "partial": 0, "failed": 0}
        self._cut_off: dict[str, int] = dict.fromkeys(CUT_OFF_REASONS, 0)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)

    def reloaded(self, outcome: str) -> None:
        """Count one SIGHUP reload: ok, partial (some agent failed to start) or failed."""
        self._reloads[outcome] = self._reloads.get(outcome, 0) + 1

    def cut_off(self, reason: str) -> None:
        """Count a request the HTTP protocol cut off before it reached the app."""
        self._cut_off[reason] = self._cut_off.get(reason, 0) + 1

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        key = (route, method, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        times = self._times.get(route)
        if times is None:
            times = self._times[route] = _RouteTimes()
        times.buckets[bisect.bisect_left(_BUCKETS, seconds)] += 1
        times.total += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "vibe_http_requests",
            "HTTP requests by route template, method and status.",
            labels=["route", "method", "status"],
        )
        for (route, method, status), count in list(self._requests.items()):
            requests.add_metric([route, method, str(status)], count)
        durations = HistogramMetricFamily(
            "vibe_http_request_duration_seconds", "HTTP request latency.", labels=["route"]
        )
        for route, times in list(self._times.items()):
            running, cumulative = 0, []
            for bound, count in zip((*_BUCKETS, float("inf")), times.buckets, strict=True):
                running += count
                cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
            durations.add_metric([route], cumulative, times.total)
        reloads = CounterMetricFamily(
            "vibe_reloads", "Live reloads of the wiring (SIGHUP), by outcome.", labels=["outcome"]
        )
        for outcome, count in list(self._reloads.items()):
            reloads.add_metric([outcome], count)
        yield requests
        yield durations
        yield reloads
        cut_off = CounterMetricFamily(
            "vibe_http_cut_off",
            "Requests cut off below the app: slow or oversized headers, "
            "a body that stopped arriving.",
            labels=["reason"],
        )
        for reason, count in list(self._cut_off.items()):
            cut_off.add_metric([reason], count)
        yield cut_off
        if self._streams is not None:
            open_now, sent, dropped = self._streams()
            yield GaugeMetricFamily("vibe_sse_streams", "Open event streams.", value=open_now)
            yield CounterMetricFamily(
                "vibe_sse_events", "Events sent on event streams.", value=sent
            )
            yield CounterMetricFamily(
                "vibe_sse_dropped",
                "Events dropped for event-stream clients too slow to keep up.",
                value=dropped,
            )


class AdmissionMetrics(Collector):
    """The admission's figures, read at scrape time (register it in the app's registry).

    Every reason of the counters is always exported, 0 until it happens.
    """

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    def collect(self) -> Iterator[Metric]:
        admission = self._admission
        refused = CounterMetricFamily(
            "vibe_http_refused",
            "Requests refused over a budget (503 problem+json), and "
            "connections closed at once with every connection busy.",
            labels=["reason"],
        )
        for reason in REFUSAL_REASONS:
            refused.add_metric([reason], admission.refused[reason])
        yield refused
        closed = CounterMetricFamily(
            "vibe_http_idle_closed",
            "Idle connections closed to make room for a new one, by the limit it passed.",
            labels=["reason"],
        )
        for reason in IDLE_CLOSE_REASONS:
            closed.add_metric([reason], admission.idle_closed[reason])
        yield closed
        connections = GaugeMetricFamily(
            "vibe_http_connections",
            "Open HTTP connections: idle (no request in flight) or busy.",
            labels=["state"],
        )
        idle = admission.idle_connections
        connections.add_metric(["idle"], idle)
        connections.add_metric(["busy"], admission.open_connections - idle)
        yield connections
        in_flight = GaugeMetricFamily(
            "vibe_http_in_flight",
            "Admitted requests whose handler has not returned, by budget.",
            labels=["kind"],
        )
        in_flight.add_metric(["request"], admission.requests)
        in_flight.add_metric(["probe"], admission.probes)
        in_flight.add_metric(["stream"], admission.streams)
        yield in_flight
        yield GaugeMetricFamily(
            "vibe_http_clients",
            "Client addresses with an open connection or event stream.",
            value=admission.clients,
        )
