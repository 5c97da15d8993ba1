"""phoenix: reads and validates wiring.yaml and builds the supervision tree from it.

``load`` validates (every problem at once, each with file:line:column and
path), ``build`` turns the result into the runtime's specs, ``boot`` starts
it, ``reload`` applies a changed file to a running system, and
``default_wiring`` is the wiring shipped in the package (the 13 system agents).
The CLI is ``python -m phoenix check|tree|schema|init`` (``vibe-phoenix``).
"""

from phoenix._build import boot, build, reload
from phoenix._default import default_wiring
from phoenix._errors import WiringError, WiringProblem
from phoenix._load import Wiring, load, load_text
from phoenix._schema import SupervisorNode, WiringFile, WorkerNode, json_schema

__all__ = [
    "SupervisorNode",
    "Wiring",
    "WiringError",
    "WiringFile",
    "WiringProblem",
    "WorkerNode",
    "boot",
    "build",
    "default_wiring",
    "json_schema",
    "load",
    "load_text",
    "reload",
]
