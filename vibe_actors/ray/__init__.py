"""Ray placement: run an agent's behaviour on a Ray cluster, supervised by us.

Importing this package does not import Ray: the settings and the remote host
are plain Python. :func:`placed` (and :class:`RayProxy`) import Ray when first
used, which a wiring does only for a ``placement: ray`` node. Check
:func:`ray_available` first to report a missing extra clearly
(:data:`INSTALL_HINT`).

See ``docs/scaling.md`` for what a placed agent can and cannot use.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import typing
from typing import TYPE_CHECKING, Any

from vibe_actors.ray._entity_host import DurableOnRay
from vibe_actors.ray._host import AgentHost, RemoteFeatureUnavailable
from vibe_actors.ray._settings import AgentResources, RaySettings

if TYPE_CHECKING:
    from vibe_actors._agent import Agent
    from vibe_actors._entity import Entity
    from vibe_actors.ray._proxy import RayProxy

__all__ = [
    "INSTALL_HINT",
    "AgentHost",
    "AgentResources",
    "DurableOnRay",
    "local_environment",
    "RaySettings",
    "RemoteFeatureUnavailable",
    "placed",
    "ray_available",
]

#: What to do when Ray is missing.
INSTALL_HINT = "placement: ray needs the ray extra: pip install 'vibe-actors[ray]'"


def local_environment() -> None:
    """Set what keeps a local cluster on loopback and quiet; Ray reads these when imported.

    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (with ``_node_ip_address="127.0.0.1"``
    at ``ray.init``) keeps every Ray socket on 127.0.0.1; usage statistics are off.
    A value the environment already sets is kept.
    """
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def ray_available() -> bool:
    """Whether Ray can be imported (without importing it)."""
    return importlib.util.find_spec("ray") is not None


@typing.overload
def placed(hosted: type[Agent], settings: RaySettings | None = None) -> type[RayProxy]: ...
@typing.overload
def placed(hosted: type[Entity[Any]], settings: RaySettings | None = None) -> type[Entity[Any]]: ...
def placed(hosted: type, settings: RaySettings | None = None) -> type:
    """``hosted`` placed on Ray (see ``vibe_actors.ray._placement``).

    For an Agent class: the proxy Agent class that runs it on Ray. For an
    Entity class: the Entity class whose kind's shards run on Ray (use it as
    the ``agent`` of ``WorkerSpec(..., entity=EntitySpec(...))``; see
    ``vibe_actors.ray._entity_proxy``). Raises ``RuntimeError`` with
    :data:`INSTALL_HINT` when Ray is not installed.
    """
    if not ray_available():
        raise RuntimeError(INSTALL_HINT)
    placement: Any = importlib.import_module("vibe_actors.ray._placement")
    result: type = placement.placed(hosted, settings)
    return result


# Before any submodule imports Ray (it reads these at import): every import of
# vibe_actors.ray._proxy or ._cluster runs this package first.
local_environment()
