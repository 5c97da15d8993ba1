"""application/problem+json (RFC 9457) responses.

Every error the gateway returns is a :class:`Problem`; a traceback never is.
"""

from __future__ import annotations

from typing import Any

from gateway._problem_types import PROBLEM_TYPES, reply_type

# One definition of the body for the server and its OpenAPI document.
from vibe_actors.agents.schema import FieldError, Problem

__all__ = [
    "RETRY_AFTER",
    "STATUS_TITLES",
    "FieldError",
    "Problem",
    "Reject",
    "make_problem",
    "problem_for_reply",
]

#: The header sent with every 429 and 503: come back in a second.
RETRY_AFTER = (b"retry-after", b"1")

STATUS_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def make_problem(
    status: int,
    slug: str,
    detail: str,
    request_id: str,
    errors: list[FieldError] | None = None,
    reply: Any = None,
) -> Problem:
    """A :class:`Problem` of ``status`` whose ``type`` is ``/problems/<slug>``."""
    known = PROBLEM_TYPES.get(slug)
    return Problem(
        type=f"/problems/{slug}",
        title=known.title if known is not None else STATUS_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        request_id=request_id,
        errors=errors,
        reply=reply,
    )


def problem_for_reply(reply: Any, request_id: str) -> Problem:
    """Map an agent's :class:`ErrorReply` to a problem, using its ``http_status``."""
    kind = reply_type(type(reply))
    detail = getattr(reply, "detail", "") or _describe(reply)
    return Problem(
        type=kind.type,
        title=kind.title,
        status=kind.status,
        detail=detail,
        request_id=request_id,
        reply=reply,
    )


def _describe(reply: Any) -> str:
    fields = getattr(reply, "__struct_fields__", ())
    parts = [f"{f}={getattr(reply, f)}" for f in fields if f != "detail"]
    return f"{type(reply).__name__}: {', '.join(parts)}" if parts else type(reply).__name__


class Reject(Exception):
    """Ends a request early with a problem (raised and caught inside the app only)."""

    def __init__(
        self,
        problem: Problem,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        route: str | None = None,
    ) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.headers = headers
        #: The route template the request matched, when it is known before the route runs.
        self.route = route
