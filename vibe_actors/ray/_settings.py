"""The ``ray:`` settings of a wiring (plain msgspec data; Ray is not imported here)."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["AgentResources", "RaySettings"]


class AgentResources(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What Ray reserves for one placed agent (each worker of a pool gets its own)."""

    #: CPUs reserved on the node for the agent's whole life. 0 places it anywhere (Ray's
    #: default for actors); 1 for a CPU-bound agent, so Ray spreads them over the cores.
    num_cpus: Annotated[float, msgspec.Meta(ge=0)] = 0.0


class RaySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where and how ``placement: ray`` agents run."""

    #: A Ray cluster to join (``ray://...`` or ``host:port``); null starts a local one on
    #: 127.0.0.1 only, in this process's lifetime.
    address: str | None = None
    #: Ray namespace of the agents' named actors: one running system per namespace.
    namespace: str = "vibe"
    #: The resources of every placed agent, unless ``resources`` names it.
    num_cpus: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    #: Per agent (or pool) name: its own resources.
    resources: dict[str, AgentResources] = {}
    #: Calls one proxy may have submitted and not yet answered; past it the proxy waits
    #: (its mailbox fills and its bound applies).
    max_in_flight: Annotated[int, msgspec.Meta(ge=1)] = 64
    #: CPUs a local cluster offers (null: all of the machine's). Ignored with ``address``.
    local_cpus: Annotated[int, msgspec.Meta(ge=1)] | None = None
    #: A local cluster's temporary directory (null: ``<data_dir>/ray``). Ray's socket paths
    #: live under it and must stay short (under about 100 characters in all).
    temp_dir: str | None = None

    def for_agent(self, name: str) -> AgentResources:
        """The resources of ``name`` (a pool worker ``jobs.2`` takes its pool's, ``jobs``)."""
        found = self.resources.get(name)
        if found is None and "." in name:
            found = self.resources.get(name.rsplit(".", 1)[0])
        return found if found is not None else AgentResources(num_cpus=self.num_cpus)
