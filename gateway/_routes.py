"""The gateway's routes as data: one table, matched by path segments.

Each :class:`Route` row names its method, its template (also the ``route``
label of the HTTP metrics and the path of the OpenAPI document), and the
:class:`~gateway._app.Gateway` method that serves it. :class:`Router` matches a
path against the rows in one dictionary lookup by segment count and a compare
per literal segment (a framework router cost about 30% of raw ASGI throughput
here, see :mod:`gateway._app`); a path that matches a row of another method is
a :class:`MethodNotAllowed` naming the methods that are (the ``Allow`` header).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = ["ROUTES", "MethodNotAllowed", "NotFound", "Route", "Router", "UNMATCHED"]

#: The metric label of a request no route matched (bounded cardinality).
UNMATCHED = "unmatched"
#: Paths whose match is remembered (see Router.match).
_CACHE_SIZE = 4096


class Route(NamedTuple):
    """One route: ``method`` on ``template`` is served by ``Gateway.<endpoint>``."""

    method: str
    template: str
    endpoint: str
    #: Under ``/v1``: a bearer token is required when tokens are configured.
    secured: bool = True
    #: Served only when fault injection is on (``--chaos``).
    chaos: bool = False
    #: The console's files: served unless it is off (``--no-ui``).
    console: bool = False

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.template.strip("/").split("/"))


ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/agents/{name}/{type}", "ask"),
    Route("GET", "/v1/agents", "agents"),
    Route("GET", "/v1/agents/{name}", "agent"),
    Route("DELETE", "/v1/agents/{name}", "terminate_child"),
    Route("POST", "/v1/supervisors/{name}/children", "start_child"),
    Route("GET", "/v1/tree", "tree"),
    Route("GET", "/v1/entities", "entity_kinds"),
    Route("GET", "/v1/entities/{kind}", "entity_kind"),
    Route("GET", "/v1/entities/{kind}/{id}", "entity"),
    Route("POST", "/v1/entities/{kind}/{id}/{type}", "ask"),
    Route("GET", "/v1/openapi.json", "openapi"),
    Route("GET", "/v1/topics/{topic}/events", "events"),
    Route("GET", "/v1/events", "runtime_stream"),
    Route("GET", "/v1/dead-letters", "dead_letter_report"),
    Route("GET", "/v1/system", "system_view"),
    Route("POST", "/v1/chaos/{name}/crash", "chaos", chaos=True),
    Route("POST", "/v1/chaos/{name}/hang", "chaos", chaos=True),
    Route("GET", "/problems/{slug}", "problem_type", secured=False),
    Route("GET", "/ui", "ui", secured=False, console=True),
    Route("GET", "/ui/{file}", "ui", secured=False, console=True),
    Route("GET", "/healthz", "probe", secured=False),
    Route("GET", "/livez", "probe", secured=False),
    Route("GET", "/readyz", "probe", secured=False),
    Route("GET", "/metrics", "probe", secured=False),
)


class NotFound(Exception):
    """No route has this path."""


class MethodNotAllowed(Exception):
    """Routes have this path, for other methods: ``allow`` lists them (a GET serves HEAD)."""

    def __init__(self, route: Route, allow: Sequence[str]) -> None:
        super().__init__(", ".join(allow))
        self.route = route
        self.allow = allow


class Router:
    """Matches a path to its route and path parameters."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)
        #: (method, path) -> its match: a request's path is matched once, not per request.
        #: Bounded: past _CACHE_SIZE paths it starts over (a client inventing paths costs
        #: only the matching it would cost without the cache).
        self._cache: dict[tuple[str, str], tuple[Route, tuple[str, ...]]] = {}
        #: segment count -> [(literal segments by position, parameter positions, route)].
        self._by_length: dict[int, list[tuple[tuple[tuple[int, str], ...], tuple[int, ...], Route]]]
        self._by_length = {}
        for route in self.routes:
            segments = route.segments
            literals = tuple((i, s) for i, s in enumerate(segments) if not s.startswith("{"))
            params = tuple(i for i, s in enumerate(segments) if s.startswith("{"))
            self._by_length.setdefault(len(segments), []).append((literals, params, route))

    def methods_for(self, path: str) -> list[str]:
        """The methods routes serve on ``path`` (empty if none has it)."""
        parts = path.strip("/").split("/")
        return [
            route.method
            for literals, _, route in self._by_length.get(len(parts), ())
            if all(parts[i] == text for i, text in literals)
        ]

    def match(self, method: str, path: str) -> tuple[Route, tuple[str, ...]]:
        """The route of ``method`` on ``path`` and its parameter values, in template order.

        Raises :class:`NotFound` when no route has the path, :class:`MethodNotAllowed`
        when only routes of other methods do. A HEAD is served by the GET route.
        """
        found = self._cache.get((method, path))
        if found is not None:
            return found
        parts = path.strip("/").split("/")
        allowed: list[Route] = []
        for literals, params, route in self._by_length.get(len(parts), ()):
            for i, text in literals:
                if parts[i] != text:
                    break
            else:
                values = tuple(parts[i] for i in params)
                if "" in values:  # an empty segment is no parameter value
                    continue
                if route.method == method or (method == "HEAD" and route.method == "GET"):
                    if len(self._cache) >= _CACHE_SIZE:
                        self._cache.clear()
                    found = self._cache[method, path] = route, values
                    return found
                allowed.append(route)
        if not allowed:
            raise NotFound(path)
        raise MethodNotAllowed(allowed[0], _allow(allowed))


def _allow(routes: Sequence[Route]) -> list[str]:
    """The methods of ``routes``, HEAD after GET (a GET route serves HEAD too)."""
    methods: list[str] = []
    for route in routes:
        methods.append(route.method)
        if route.method == "GET":
            methods.append("HEAD")
    return methods
