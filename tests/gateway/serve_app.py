"""Run the gateway's serve() on a small system, as a real process (for signal tests).

usage: python -m tests.gateway.serve_app PORT
"""

from __future__ import annotations

import sys

from gateway import GatewaySettings
from gateway._logging import configure_logging
from gateway._main import serve
from vibe_actors import ActorSystem, SupervisorSpec, WorkerSpec

from tests.vibe_actors.agents import Napper

if __name__ == "__main__":
    settings = GatewaySettings(port=int(sys.argv[1]), drain_timeout=10.0, log_format="json")
    configure_logging("info", "json")
    tree = SupervisorSpec(name="root", children=(WorkerSpec(name="w", agent=Napper),))
    sys.exit(serve(ActorSystem(tree).start(), settings))
