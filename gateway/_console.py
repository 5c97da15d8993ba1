"""The console's routes, and the API views it reads that scripts may read too.

* ``GET /ui/`` and ``GET /ui/{file}``: the console (one page, plain ES modules,
  no framework, nothing from a network at run time), files of this package
  (``gateway/console``), read once when the app is created. Served with a
  strict Content-Security-Policy (scripts, styles and connections from this
  origin only, no inline script, no framing), ``X-Content-Type-Options:
  nosniff`` and ``Referrer-Policy: no-referrer``. The files hold no data, so
  they need no token; every view of the page reads the API with the bearer
  token it asks for. Off with ``--no-ui`` / ``VIBE_UI=0``.
* ``GET /v1/events``: the runtime events as Server-Sent Events
  (:mod:`gateway._runtime_events`).
* ``GET /v1/dead-letters``: dead letters by reason, and the newest ones.
* ``GET /v1/system``: uptime, store, reloads and escalations.

The three API views are authorised as the introspect agent's ``Agents`` (as
``/v1/agents`` is: they show failure texts and agent names).
"""

from __future__ import annotations

import time
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from gateway._http import header, respond
from gateway._problems import RETRY_AFTER, Reject, make_problem
from gateway._sse_wire import StreamRefused
from vibe_actors import (
    ActorSystem,
    AgentAbandoned,
    CircuitOpened,
    ReloadRejected,
    RuntimeEvent,
    SupervisorGaveUp,
    TreeReloaded,
)
from vibe_actors.agents.watchdog.protocol import AgentDeclaredHung
from vibe_actors.store import parse_store_url

if TYPE_CHECKING:
    from gateway._app_settings import AppSettings
    from gateway._request import Request
    from gateway._runtime_events import RuntimeEvents

__all__ = [
    "CONSOLE_HEADERS",
    "ConsoleFiles",
    "ConsoleRoutes",
    "DeadLetterReport",
    "DeadLetterView",
    "Escalation",
    "Reload",
    "StoreInfo",
    "SystemView",
]

#: Sent with every file of the console.
CONSOLE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-cache"),
)
_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
}
#: Dead letters listed by /v1/dead-letters (the newest).
RECENT_DEAD_LETTERS = 100
_ESCALATIONS: tuple[type[RuntimeEvent], ...] = (
    SupervisorGaveUp,
    AgentAbandoned,
    CircuitOpened,
    AgentDeclaredHung,
)


class ConsoleFiles:
    """The console's files, read from the package once: name -> (content type, bytes)."""

    def __init__(self) -> None:
        folder = resources.files("gateway").joinpath("console")
        self.files: dict[str, tuple[bytes, bytes]] = {}
        for entry in folder.iterdir():
            suffix = "." + entry.name.rpartition(".")[2]
            if entry.is_file() and suffix in _TYPES:
                self.files[entry.name] = (_TYPES[suffix], entry.read_bytes())

    def get(self, name: str) -> tuple[bytes, bytes] | None:
        return self.files.get(name)


class DeadLetterView(msgspec.Struct, frozen=True, kw_only=True):
    """One dead letter (without the message itself: it may hold data)."""

    recipient: str
    reason: str
    message_type: str
    request_id: str | None
    sender: str | None
    at: float


class DeadLetterReport(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /v1/dead-letters``: every reason's count and the newest dead letters."""

    total: int
    counts: dict[str, int]
    #: Oldest first, at most 100.
    recent: list[DeadLetterView]


class StoreInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Where the durable agents keep their data: ``backend`` (``sqlite`` or ``postgresql``),
    ``location`` (``sqlite``, or the PostgreSQL URL without its password) and the data
    directory (SQLite files, and the stores not on PostgreSQL yet)."""

    backend: str
    location: str
    data_dir: str


class Reload(msgspec.Struct, frozen=True, kw_only=True):
    """A live reload (SIGHUP): applied, applied in part (``failed``: agents that did not
    start), or rejected before anything changed (``problems``: the wiring file's)."""

    at: float
    outcome: Literal["applied", "partial", "rejected"]
    added: list[str] = []
    removed: list[str] = []
    changed: list[str] = []
    failed: list[str] = []
    problems: list[str] = []


class Escalation(msgspec.Struct, frozen=True, kw_only=True):
    """Supervision that needed more than a restart: a supervisor gave up, an incarnation
    was abandoned, a circuit opened, the watchdog declared an agent hung (``stack``)."""

    at: float
    kind: str
    agent: str
    reason: str
    stack: str | None = None


class SystemView(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /v1/system``: the running system at a glance (reloads and escalations since
    this gateway started serving, the newest 50 of each). ``started_at``: when the
    system started running (wall clock)."""

    started_at: float
    uptime_seconds: float
    running: bool
    failure: str | None
    agents: int
    store: StoreInfo
    chaos: bool
    auth: bool
    reloads: list[Reload]
    escalations: list[Escalation]


def _reload(event: RuntimeEvent) -> Reload:
    """The history entry of a :class:`TreeReloaded` or :class:`ReloadRejected`."""
    if isinstance(event, ReloadRejected):
        return Reload(at=event.at, outcome="rejected", problems=list(event.problems))
    assert isinstance(event, TreeReloaded)
    return Reload(
        at=event.at,
        outcome="partial" if event.failed else "applied",
        added=list(event.added),
        removed=list(event.removed),
        changed=list(event.changed),
        failed=list(event.failed),
    )


def _store_info(system: ActorSystem) -> StoreInfo:
    location = parse_store_url(system.config.store)  # checked when the system started
    return StoreInfo(
        backend=location.kind, location=location.shown, data_dir=system.config.data_dir
    )


def escalation(event: RuntimeEvent) -> Escalation:
    """The :class:`Escalation` of one of the escalating events."""
    kind = type(event).__name__
    if isinstance(event, SupervisorGaveUp):
        return Escalation(at=event.at, kind=kind, agent=event.supervisor, reason=event.reason)
    if isinstance(event, CircuitOpened):
        reason = f"{event.message_type} crashed {event.crashes} times: refused {event.seconds}s"
        return Escalation(at=event.at, kind=kind, agent=event.agent, reason=reason)
    if isinstance(event, AgentDeclaredHung):
        return Escalation(
            at=event.at, kind=kind, agent=event.agent, reason=event.reason, stack=event.stack
        )
    assert isinstance(event, AgentAbandoned)
    return Escalation(at=event.at, kind=kind, agent=event.agent, reason=event.reason)


class ConsoleRoutes:
    """The console's endpoints of :class:`gateway._app.Gateway` (see the module docstring)."""

    system: ActorSystem
    settings: AppSettings
    runtime_events: RuntimeEvents
    console: ConsoleFiles | None
    started_at: float
    _tokens: list[tuple[str, bytes]]

    if TYPE_CHECKING:  # provided by Gateway

        async def _guard(self, request: Request, agent: str, message: str) -> None: ...

        async def _json(self, request: Request, value: Any) -> int: ...

    async def ui(self, request: Request) -> int:
        """``GET /ui/`` (``/ui`` redirects there: the page's links are relative) and
        ``GET /ui/{file}``."""
        root = request.scope.get("root_path") or ""
        if not request.params and not request.scope["path"].endswith("/"):
            location = (b"location", f"{root}/ui/".encode())
            await respond(request.send, 308, b"", b"text/plain", (location, *request.ok))
            return 308
        name = request.params[0] if request.params else "index.html"
        found = self.console.get(name) if self.console is not None else None
        if found is None:
            detail = f"the console has no file {name!r}"
            raise Reject(make_problem(404, "not-found", detail, request.request_id))
        kind, body = found
        await respond(request.send, 200, body, kind, (*CONSOLE_HEADERS, *request.ok))
        return 200

    async def runtime_stream(self, request: Request) -> int:
        """``GET /v1/events``: the runtime events (gateway._runtime_events)."""
        await self._guard(request, self.settings.introspect, "Agents")
        resume = header(request.scope, b"last-event-id")
        try:
            await self.runtime_events.stream(
                request.send, request.receive, request.request_id, resume
            )
        except StreamRefused as exc:
            problem = make_problem(exc.status, exc.slug, exc.detail, request.request_id)
            raise Reject(problem, (RETRY_AFTER,) if exc.status == 503 else ()) from None
        return 200

    async def dead_letter_report(self, request: Request) -> int:
        """``GET /v1/dead-letters``."""
        await self._guard(request, self.settings.introspect, "Agents")
        letters = self.system.dead_letters
        counts = letters.counts()
        recent = [
            DeadLetterView(
                recipient=letter.recipient,
                reason=letter.reason.value,
                message_type=letter.message_type,
                request_id=letter.request_id,
                sender=letter.sender,
                at=letter.at,
            )
            for letter in letters.recent(RECENT_DEAD_LETTERS)
        ]
        report = DeadLetterReport(total=sum(counts.values()), counts=counts, recent=recent)
        return await self._json(request, report)

    async def system_view(self, request: Request) -> int:
        """``GET /v1/system``."""
        await self._guard(request, self.settings.introspect, "Agents")
        system = self.system
        reloads = [
            _reload(event) for event in self.runtime_events.recent((TreeReloaded, ReloadRejected))
        ]
        started_at = system.started_at or self.started_at  # the system's; else this app's
        view = SystemView(
            started_at=started_at,
            uptime_seconds=round(time.time() - started_at, 3),
            running=system.running,
            failure=system.failure,
            agents=len(system.names()),
            store=_store_info(system),
            chaos=self.settings.chaos,
            auth=bool(self._tokens),
            reloads=reloads,
            escalations=[escalation(e) for e in self.runtime_events.recent(_ESCALATIONS)],
        )
        return await self._json(request, view)
