"""Dynamic children over HTTP: ``POST /v1/supervisors/{name}/children``, ``DELETE /v1/agents/{name}``.

A request names a child, a template and its config: ``{"name", "template",
"config"}``. The template is one of the classes the wiring lists in that
supervisor's ``templates:``, by class name, and nothing else: no class is
ever imported from a request. The config is decoded by the template's
``Config`` struct, so its bounds are what a client may ask for. The answer:

======  ============================  ===================================================
status  problem type                  when
======  ============================  ===================================================
201                                   started; ``Location: /v1/agents/<name>``
404     ``unknown-agent``             no supervisor of that name
404     ``not-dynamic-supervisor``    the supervisor is not ``dynamic: true``
409     ``name-taken``                an agent of that name exists
422     ``invalid-body``              the body or its ``config`` (``errors`` names the field)
422     ``unknown-template``          not one of the supervisor's templates (listed)
429     ``too-many-children``         ``max_children`` reached (``Retry-After``)
503     ``start-failed``              the child's ``on_start`` failed (its exception type
                                      only; the cause is in the log under the request id)
======  ============================  ===================================================

``DELETE /v1/agents/{name}`` stops a dynamic child: 204, 404 ``unknown-agent``,
409 ``static-agent`` for an agent declared in the wiring (never stopped
this way). Policy: starting is the message ``StartChild`` to the supervisor,
terminating ``TerminateChild`` to the child's supervisor, so a rule on one
supervisor governs its children (403 otherwise). As for asks, an unknown
name is answered 404 before the policy is consulted.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import structlog

from gateway._body import invalid_body
from gateway._problems import RETRY_AFTER, FieldError, Reject, make_problem, problem_for_reply
from vibe_actors import (
    ActorSystem,
    AskError,
    NameTaken,
    NotDynamic,
    Ref,
    StartFailed,
    SupervisorFull,
    SystemNotRunning,
    UnknownAgent,
    WorkerSpec,
    decode_error,
)

__all__ = [
    "NAME_PATTERN",
    "START_CHILD",
    "TERMINATE_CHILD",
    "ChildCreated",
    "ChildRequest",
    "decode_request",
    "dynamic_supervisor_of",
    "start",
    "templates_of",
    "terminate",
]

_log = structlog.get_logger("gateway.children")

#: The message names policy rules use for the two routes.
START_CHILD = "StartChild"
TERMINATE_CHILD = "TerminateChild"
#: A dynamic child's name over HTTP: ASCII letters, digits, ``_``, ``.``, ``-`` (as documented).
NAME_PATTERN = "^[A-Za-z0-9_.-]+$"


class ChildRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /v1/supervisors/{name}/children``."""

    #: The new agent's name: unique in the whole system.
    name: Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, min_length=1, max_length=200)]
    #: One of the supervisor's templates, by class name.
    template: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    #: The agent's settings, decoded by the template's ``Config`` (null: its defaults).
    config: dict[str, Any] | None = None


class ChildCreated(msgspec.Struct, frozen=True, kw_only=True):
    """The body of a 201: the child that now runs."""

    name: str
    supervisor: str
    template: str
    #: The Agent class, ``module:Class``.
    agent: str


_decoder = msgspec.json.Decoder(ChildRequest)


def decode_request(body: bytes, request_id: str) -> ChildRequest:
    """The request body; raises Reject (400 malformed, 422 naming the field)."""
    try:
        return _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise invalid_body(ChildRequest, exc, request_id) from None


def templates_of(system: ActorSystem, supervisor: str, request_id: str) -> dict[str, type]:
    """The templates of dynamic supervisor ``supervisor`` by class name; raises Reject (404)."""
    try:
        return system.dynamic_templates(supervisor)
    except UnknownAgent:
        detail = f"no agent named {supervisor!r}"
        raise Reject(make_problem(404, "unknown-agent", detail, request_id)) from None
    except NotDynamic as exc:
        raise Reject(make_problem(404, "not-dynamic-supervisor", str(exc), request_id)) from None


def _spec(
    supervisor: str, templates: dict[str, type], child: ChildRequest, request_id: str
) -> WorkerSpec:
    """The worker spec the request asks for; raises Reject (422)."""
    agent = templates.get(child.template)
    if agent is None:
        allowed = ", ".join(sorted(templates)) or "none: it lists no templates"
        detail = (
            f"{child.template!r} is not a template of {supervisor!r} (its templates: {allowed})"
        )
        raise Reject(make_problem(422, "unknown-template", detail, request_id))
    schema = getattr(agent, "Config", None)
    if schema is None:
        if child.config:
            raise _bad_config(f"{child.template} takes no config", "$.config", request_id)
        return WorkerSpec(name=child.name, agent=agent)
    try:
        config = msgspec.convert(child.config or {}, schema)
    except msgspec.ValidationError as exc:
        error = decode_error(exc)
        raise _bad_config(error.message, "$.config" + error.path[1:], request_id) from None
    return WorkerSpec(name=child.name, agent=agent, config=config)


def _bad_config(message: str, path: str, request_id: str) -> Reject:
    detail = f"invalid config: {message} - at `{path}`"
    field = FieldError(path=path, message=message)
    return Reject(make_problem(422, "invalid-body", detail, request_id, [field]))


async def start(
    system: ActorSystem,
    supervisor: str,
    templates: dict[str, type],
    child: ChildRequest,
    request_id: str,
    timeout: float | None,
) -> ChildCreated:
    """Start the child the request describes; raises Reject for each refusal (see module)."""
    spec = _spec(supervisor, templates, child, request_id)
    try:
        ref: Ref[Any] = await system.start_child_async(
            supervisor, spec, timeout=timeout, request_id=request_id
        )
    except NameTaken as exc:
        raise Reject(make_problem(409, "name-taken", str(exc), request_id)) from None
    except SupervisorFull as exc:
        detail = (
            f"{supervisor!r} runs its limit of {exc.limit} children (max_children); "
            "terminate one, or retry later"
        )
        problem = make_problem(429, "too-many-children", detail, request_id)
        raise Reject(problem, (RETRY_AFTER,)) from None
    except StartFailed as exc:
        cause = exc.__cause__
        why = type(cause).__name__ if cause is not None else "it did not confirm its start"
        _log.warning(
            "child_start_failed", agent=child.name, supervisor=supervisor,
            error=str(exc), request_id=request_id,
        )  # fmt: skip
        detail = (
            f"{child.name!r} failed to start under {supervisor!r}: {why} "
            "(the server log has the cause under this request id)"
        )
        raise Reject(
            make_problem(503, "start-failed", detail, request_id), (RETRY_AFTER,)
        ) from None
    except (UnknownAgent, NotDynamic, SystemNotRunning, AskError) as exc:
        raise _gone(exc, supervisor, request_id) from None
    return ChildCreated(
        name=ref.name,
        supervisor=supervisor,
        template=child.template,
        agent=f"{spec.agent.__module__}:{spec.agent.__qualname__}",
    )


def dynamic_supervisor_of(system: ActorSystem, name: str, request_id: str) -> str:
    """The dynamic supervisor of child ``name``; raises Reject (404 unknown, 409 static)."""
    try:
        parent = system.cell(name).parent
    except UnknownAgent:
        detail = f"no agent named {name!r}"
        raise Reject(make_problem(404, "unknown-agent", detail, request_id)) from None
    if parent is None or not getattr(parent.spec, "dynamic", False):
        detail = str(NotDynamic(name, "child"))
        raise Reject(make_problem(409, "static-agent", detail, request_id))
    return parent.name


async def terminate(system: ActorSystem, name: str, request_id: str, timeout: float | None) -> None:
    """Stop dynamic child ``name`` for good; raises Reject (see module)."""
    try:
        await system.terminate_child_async(name, timeout=timeout, request_id=request_id)
    except (UnknownAgent, NotDynamic, SystemNotRunning, AskError) as exc:
        raise _gone(exc, name, request_id) from None


def _gone(exc: Exception, name: str, request_id: str) -> Reject:
    """What happened meanwhile: removed (404), the system stopping or the supervisor
    unavailable (503), or the deadline (504)."""
    if isinstance(exc, UnknownAgent | NotDynamic):
        detail = f"no agent named {name!r}" if isinstance(exc, UnknownAgent) else str(exc)
        return Reject(make_problem(404, "unknown-agent", detail, request_id))
    if isinstance(exc, SystemNotRunning):
        detail = "the system is stopping"
        return Reject(make_problem(503, "shutting-down", detail, request_id), (RETRY_AFTER,))
    assert isinstance(exc, AskError)
    problem = problem_for_reply(exc.reply, request_id)
    return Reject(problem, (RETRY_AFTER,) if problem.status in (429, 503) else ())
