"""The wiring file's format, as msgspec types. Defaults follow Erlang/OTP.

A node with ``agent`` is a worker; a node with ``children`` is a supervisor.
Every duration may be written with a unit (``250ms``, ``10s``, ``1m``); a
plain number keeps the unit the field always had: milliseconds for
``shutdown`` (or ``brutal_kill``), as in an OTP child spec, seconds for every
other duration (see :mod:`phoenix._durations`).
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Literal

import msgspec

from phoenix import _durations as durations
from vibe_actors import (
    BackoffSpec,
    EntityState,
    MailboxSpec,
    PoolSpec,
    RestartType,
    Strategy,
    SystemConfig,
)
from vibe_actors.ray import RaySettings

__all__ = ["EntityNode", "SupervisorNode", "WiringFile", "WorkerNode", "json_schema"]

#: A duration (``10s``; a plain number is milliseconds, as in OTP) or ``brutal_kill``.
Shutdown = Annotated[int, msgspec.Meta(ge=0, extra={"duration": "ms"})] | Literal["brutal_kill"]
#: A duration of more than zero (``30s``, ``1m``; a plain number is seconds).
Period = Annotated[float, msgspec.Meta(gt=0, extra={"duration": "s"})]


class EntityNode(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An entity kind: entities by id, created on demand (see vibe_actors.EntitySpec)."""

    #: ``package.module:Class``, a vibe_actors.Entity subclass.
    agent: str
    #: Threads serving this kind (the shards are named ``<name>.<i>``).
    shards: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 8
    #: Passivate an entity idle this long (a duration; 0: never). Default 60 s.
    passivate_after: Annotated[float, msgspec.Meta(ge=0, extra={"duration": "s"})] = 60.0
    #: Beyond this many active entities in the kind, the least recently used passivate.
    max_active: Annotated[int, msgspec.Meta(ge=1)] = 1_000_000
    #: memory (lost on passivation) | durable (saved after every change, in the data dir).
    state: EntityState = EntityState.MEMORY


class WorkerNode(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A worker: one agent, a pool of identical ones, or an entity kind, under a unique name."""

    #: Unique in the whole tree (pool workers and entity shards are named ``<name>.<i>``).
    name: str
    #: ``package.module:Class``, a vibe_actors.Agent subclass (absent for an entity kind).
    agent: str | None = None
    #: An entity kind (instead of ``agent``): ``agent`` (an Entity subclass), ``shards``,
    #: ``passivate_after``, ``max_active``, ``state``.
    entity: EntityNode | None = None
    #: permanent (always restarted) | transient (only after a crash) | temporary (never).
    restart: RestartType = RestartType.PERMANENT
    #: How long to finish the current message on stop (``5s``; a plain number is
    #: milliseconds), or ``brutal_kill``. OTP: 5000 (5 s).
    shutdown: Shutdown = 5000
    #: Bounded mailbox: ``capacity`` (0 = unbounded), ``overflow``, ``block_timeout`` (a duration).
    mailbox: MailboxSpec = MailboxSpec()
    #: ``size`` workers behind this name, routed ``round_robin`` | ``least_loaded`` | ``consistent_hash``.
    pool: PoolSpec | None = None
    #: Names that must start before this one (and stop after it).
    depends_on: list[str] = []
    #: Exception -> resume | restart | stop | escalate (a builtin's name or ``module:Class``);
    #: over the agent class's own ``directives``. Unnamed exceptions restart.
    directives: dict[str, str] = {}
    #: Settings, validated against the agent class's ``Config`` struct.
    config: dict[str, Any] | None = None
    #: Where it runs: ``local`` (a thread here) or ``ray`` (a Ray actor; see the ``ray:``
    #: settings). Messages, supervision and the HTTP API are the same either way.
    placement: Literal["local", "ray"] = "local"


class SupervisorNode(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A supervisor: a strategy over an ordered list of children."""

    name: str
    #: one_for_one | one_for_all | rest_for_one. OTP default: one_for_one.
    strategy: Strategy = Strategy.ONE_FOR_ONE
    #: More than ``intensity`` restarts within ``period`` (a duration): give up. OTP: 1 in 5 s.
    intensity: Annotated[int, msgspec.Meta(ge=0)] = 1
    period: Period = 5.0
    #: Restart backoff: ``min``, ``max``, ``random_factor``, ``reset_after`` (durations).
    backoff: BackoffSpec = BackoffSpec()
    restart: RestartType = RestartType.PERMANENT
    #: How long to stop all children (``30s``; a plain number is milliseconds), or
    #: ``brutal_kill``. OTP: infinity; here 30 s.
    shutdown: Shutdown = 30000
    depends_on: list[str] = []
    #: Worker and supervisor nodes, started in order (depends_on permitting).
    children: list[dict[str, Any]] = []
    #: A dynamic supervisor (Elixir's DynamicSupervisor): no ``children`` here, they are
    #: started at run time (``POST /v1/supervisors/<name>/children``,
    #: ``ActorSystem.start_child``); one_for_one; restart types, intensity and backoff apply.
    dynamic: bool = False
    #: At most this many children at a time (dynamic only; null: no limit). Over HTTP
    #: a start past it is 429 ``too-many-children``.
    max_children: Annotated[int, msgspec.Meta(ge=0)] | None = None
    #: The agent classes (``package.module:Class``) HTTP may start here (dynamic only),
    #: named by class name in a request; the request's ``config`` is decoded by the
    #: class's ``Config``.
    templates: list[str] = []


class WiringFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole file.

    Durations: every duration may be written with a unit, ``ms``, ``s``, ``m`` or ``h``
    (``250ms``, ``10s``, ``1.5m``, ``1h``). A plain number keeps the unit the field always
    had: milliseconds for ``shutdown`` (``shutdown: 10000`` is 10 s, as in an OTP child
    spec), seconds for every other duration (``period``, ``backoff``,
    ``mailbox.block_timeout``, ``system.ask_timeout``, ``system.start_timeout`` and the
    durations of the system agents' ``config``, such as the watchdog's ``interval``).
    """

    #: The format version; only 1 exists.
    version: Literal[1] = 1
    #: System-wide settings (ask_timeout, start_timeout, serialize_messages, ...).
    system: SystemConfig = SystemConfig()
    #: Where ``placement: ray`` agents run: address (null: a local cluster on 127.0.0.1),
    #: namespace, num_cpus, resources per agent, max_in_flight, local_cpus, temp_dir.
    ray: RaySettings = RaySettings()
    #: The root supervisor.
    root: dict[str, Any]


def json_schema() -> dict[str, Any]:
    """A JSON Schema of the file for editors, generated from the types above."""
    (top, _, _), components = msgspec.json.schema_components(
        [WiringFile, SupervisorNode, WorkerNode], ref_template="#/$defs/{name}"
    )
    node = {"anyOf": [{"$ref": "#/$defs/SupervisorNode"}, {"$ref": "#/$defs/WorkerNode"}]}
    components["WiringFile"]["properties"]["root"] = {"$ref": "#/$defs/SupervisorNode"}
    components["SupervisorNode"]["properties"]["children"] = {"type": "array", "items": node}
    # msgspec cannot say it: a worker names its agent, or is an entity kind (entity.agent).
    components["WorkerNode"]["oneOf"] = [{"required": ["agent"]}, {"required": ["entity"]}]
    for struct in _structs((WiringFile, SupervisorNode, WorkerNode)):
        properties = components.get(struct.__name__, {}).get("properties", {})
        for field in msgspec.structs.fields(struct):
            if field.encode_name in properties and durations.unit_of(struct, field):
                properties[field.encode_name] = _with_unit(properties[field.encode_name])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "vibe-actors wiring.yaml",
        **top,
        "$defs": components,
    }


def _with_unit(schema: dict[str, Any]) -> dict[str, Any]:
    """A number's schema that also takes a duration with a unit (``10s``)."""
    text = {"type": "string", "pattern": durations.PATTERN}
    kept = {k: v for k, v in schema.items() if k in ("default", "description", "title")}
    choices = schema.get("anyOf") or [{k: v for k, v in schema.items() if k not in kept}]
    return {"anyOf": [*choices, text], **kept}


def _structs(roots: tuple[type, ...]) -> list[type]:
    """The Struct types ``roots`` hold, themselves included."""
    found: list[type] = []
    pending = list(roots)
    while pending:
        tp = pending.pop()
        if tp in found:
            continue
        found.append(tp)
        for field in msgspec.structs.fields(tp):
            pending += [t for t in _members(field.type) if issubclass(t, msgspec.Struct)]
    return found


def _members(tp: Any) -> list[type]:
    """The classes named anywhere in a type annotation."""
    if isinstance(tp, type):
        return [tp]
    return [member for arg in typing.get_args(tp) for member in _members(arg)]
