"""The wiring file's format, as msgspec types. Defaults follow Erlang/OTP.

A node with ``agent`` is a worker; a node with ``children`` is a supervisor.
Times are seconds except ``shutdown``, which is milliseconds (or
``brutal_kill``), as in an OTP child spec.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from vibe_actors import BackoffSpec, MailboxSpec, PoolSpec, RestartType, Strategy, SystemConfig
from vibe_actors.ray import RaySettings

__all__ = ["SupervisorNode", "WiringFile", "WorkerNode", "json_schema"]

Shutdown = Annotated[int, msgspec.Meta(ge=0)] | Literal["brutal_kill"]


class WorkerNode(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A worker: one agent, or a pool of identical ones, under a unique name."""

    #: Unique in the whole tree (pool workers are named ``<name>.<i>``).
    name: str
    #: ``package.module:Class``, a vibe_actors.Agent subclass.
    agent: str
    #: permanent (always restarted) | transient (only after a crash) | temporary (never).
    restart: RestartType = RestartType.PERMANENT
    #: Milliseconds to finish the current message on stop, or ``brutal_kill``. OTP: 5000.
    shutdown: Shutdown = 5000
    #: Bounded mailbox: ``capacity`` (0 = unbounded), ``overflow``, ``block_timeout`` (s).
    mailbox: MailboxSpec = MailboxSpec()
    #: ``size`` workers behind this name, routed ``round_robin`` | ``least_loaded`` | ``consistent_hash``.
    pool: PoolSpec | None = None
    #: Names that must start before this one (and stop after it).
    depends_on: list[str] = []
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
    #: More than ``intensity`` restarts within ``period`` seconds: give up. OTP: 1 in 5 s.
    intensity: Annotated[int, msgspec.Meta(ge=0)] = 1
    period: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    #: Restart backoff: ``min``, ``max``, ``random_factor``, ``reset_after`` (seconds).
    backoff: BackoffSpec = BackoffSpec()
    restart: RestartType = RestartType.PERMANENT
    #: Milliseconds to stop all children, or ``brutal_kill``. OTP: infinity; here 30 s.
    shutdown: Shutdown = 30000
    depends_on: list[str] = []
    #: Worker and supervisor nodes, started in order (depends_on permitting).
    children: list[dict[str, Any]] = []


class WiringFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole file."""

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
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "vibe-actors wiring.yaml",
        **top,
        "$defs": components,
    }
