"""application/problem+json (RFC 9457) responses.

Every error the gateway returns is a :class:`Problem`; a traceback never is.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from gateway._problem_types import PROBLEM_TYPES, reply_type

# One definition of the body for the server and its OpenAPI document.
from vibe_actors.agents.schema import FieldError, Problem

__all__ = [
    "REASON_PHRASES",
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

#: RFC 9110's reason phrase of every status (and RFC 6585's of 428, 429, 431, 511), for the
#: status lines the server writes (gateway._protocol) and the problems' fallback titles.
#: Python's http.HTTPStatus has RFC 7231's older phrases for these before 3.13.
REASON_PHRASES: dict[int, str] = {
    **{int(status): status.phrase for status in HTTPStatus},
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}

#: The title of a problem whose type the gateway does not list (its status's phrase).
STATUS_TITLES = {
    status: REASON_PHRASES[status]
    for status in (400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 431, 500, 503, 504)
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
