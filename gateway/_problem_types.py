"""What each problem ``type`` means: the gateway's own, and the agents' error replies.

Every problem the gateway sends has ``type: /problems/<slug>``; ``GET
/problems/<slug>`` on the gateway answers what that type means (its title,
status and a description), so a client or an operator can look a type up
where it came from. The gateway's own types are listed here; an agent's
error reply is a type named after its class (``StorageUnavailable`` ->
``storage-unavailable``), titled by the first line of the class's docstring.
A problem's ``title`` is its type's title, not the HTTP status phrase.
"""

from __future__ import annotations

import msgspec

__all__ = ["PROBLEM_TYPES", "ProblemType", "reply_slug", "reply_type"]


class ProblemType(msgspec.Struct, frozen=True):
    """The description of one problem type (the body of ``GET /problems/<slug>``)."""

    type: str
    title: str
    status: int
    description: str


def _types(*rows: tuple[str, int, str, str]) -> dict[str, ProblemType]:
    return {
        slug: ProblemType(f"/problems/{slug}", title, status, text)
        for slug, status, title, text in rows
    }


#: The gateway's own problem types, by slug.
PROBLEM_TYPES: dict[str, ProblemType] = _types(
    ("bad-content-length", 400, "Content-Length is no length", "More than 18 digits, or not a number."),
    ("bad-seconds", 400, "Bad hang duration", "Chaos `seconds` must be a finite number in (0, 3600]."),
    ("bad-last-event-id", 400, "Bad Last-Event-ID", "Last-Event-ID must be an id the event stream sent: up to 18 digits."),
    ("bad-timeout", 400, "Bad X-Timeout-Ms", "X-Timeout-Ms must be a positive integer of milliseconds, at most 9 digits."),
    ("malformed-json", 400, "Malformed JSON", "The body is not JSON (or not UTF-8, or nested past the decoder's limit)."),
    ("unauthorized", 401, "Bearer token required", "Every /v1 route needs `Authorization: Bearer <token>` when tokens are configured."),
    ("forbidden", 403, "Denied by policy", "The policy does not allow this principal to send this message to this agent."),
    ("chaos-refused", 403, "Chaos refused", "Chaos crashes and hangs workers and pools only, never a supervisor."),
    ("cors-refused", 403, "Origin not allowed", "The preflight's origin or method is not allowed (--cors-origins)."),
    ("not-found", 404, "No such route", "No route has this path."),
    ("unknown-agent", 404, "No such agent", "No agent has this name."),
    ("unknown-entity-kind", 404, "No such entity kind", "No entity kind has this name."),
    ("unknown-message-type", 404, "No such message type", "The agent accepts no message of this type; the detail lists those it accepts."),
    ("not-dynamic-supervisor", 404, "Not a dynamic supervisor", "Children are started at run time only in a supervisor declared `dynamic: true`."),
    ("no-pubsub", 404, "No pubsub agent", "Event streams need the pubsub agent, which this system does not run."),
    ("method-not-allowed", 405, "Method not allowed", "The route serves other methods; `Allow` lists them."),
    ("name-taken", 409, "Name taken", "An agent of that name exists; names are unique in the whole system."),
    ("static-agent", 409, "Declared in the wiring", "Only a dynamic child is stopped over HTTP; an agent declared in the wiring is removed by a reload."),
    ("header-timeout", 408, "Headers too slow", "The request's headers did not arrive within the header timeout."),
    ("body-too-large", 413, "Body too large", "The body is over the limit (--max-body-bytes)."),
    ("unsupported-media-type", 415, "Not JSON", "The body must be application/json."),
    ("invalid-body", 422, "Invalid body", "The body does not match the message type; `errors` names the field."),
    ("invalid-entity-id", 422, "Invalid entity id", "An entity id is 1..256 characters."),
    ("nesting-too-deep", 422, "Nested too deep", "The body nests containers deeper than 100 levels."),
    ("unknown-template", 422, "Unknown template", "The template is not one of the supervisor's `templates:`; the detail lists them."),
    ("invalid-topic", 422, "Invalid topic", "A topic is 1..200 of [A-Za-z0-9._:-], starting with a letter or digit."),
    ("quota-exceeded", 429, "Quota exceeded", "The principal's quota for this agent is spent; retry after Retry-After seconds."),
    ("too-many-children", 429, "Too many children", "The dynamic supervisor runs its `max_children`; terminate one or retry after Retry-After seconds."),
    ("headers-too-large", 431, "Headers too large", "The request's headers are over the limit (--max-header-bytes)."),
    ("internal", 500, "Internal error", "A bug in the gateway; the server log has the details under the request id."),
    ("agent-unavailable", 503, "Agent unavailable", "The agent is restarting or stopped; retry after Retry-After seconds."),
    ("circuit-open", 503, "Circuit open", "Requests of this type to this agent kept crashing its handler; refused for a while."),
    ("over-capacity", 503, "Over capacity", "A budget of the gateway is spent (requests, probes, connections); retry soon."),
    ("too-many-streams", 503, "Too many streams", "The event-stream budget (in all, or of this client) is spent."),
    ("not-started", 503, "Not started", "The app factory's system is not started: serve it with the ASGI lifespan on."),
    ("shutting-down", 503, "Shutting down", "The gateway is draining; retry on another replica or later."),
    ("start-failed", 503, "Start failed", "The child's `on_start` failed; the detail names the exception type, the server log the cause."),
    ("policy-unavailable", 503, "Policy not loaded", "The policy agent has not loaded its policy yet."),
    ("quota-unavailable", 503, "Quota unavailable", "The quota agent could not decide: its shared store is out of reach, or it is restarting."),
)  # fmt: skip


def reply_slug(reply_class: type) -> str:
    """The problem slug of an agent's error reply class: ``StorageUnavailable`` ->
    ``storage-unavailable``."""
    name = reply_class.__name__
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def reply_type(reply_class: type) -> ProblemType:
    """The problem type of an agent's error reply class (its docstring's first line the title)."""
    doc = (reply_class.__doc__ or "").strip()
    title = doc.splitlines()[0].rstrip(".") if doc else reply_class.__name__
    status = int(getattr(reply_class, "http_status", 500))
    slug = reply_slug(reply_class)
    return ProblemType(f"/problems/{slug}", title, status, doc or reply_class.__name__)
