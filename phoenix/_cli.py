"""``python -m phoenix check|tree|schema``: validate, show, and describe wiring files.

Exit codes: 0 when the file is valid (or for ``schema``), 1 with one line per
problem (never a traceback), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from phoenix._errors import WiringError
from phoenix._load import Wiring, load
from phoenix._schema import SupervisorNode, WorkerNode, json_schema

__all__ = ["main"]


def _tree_lines(
    node: SupervisorNode | WorkerNode, wiring: Wiring, path: str, depth: int
) -> list[str]:
    pad = "  " * depth
    shown = "***" if f"{path}.name" in wiring.secrets else node.name  # never echo a secret
    if isinstance(node, WorkerNode):
        extra = f" pool={node.pool.size}x{node.pool.routing.value}" if node.pool else ""
        return [f"{pad}- {shown} [worker {node.agent}] restart={node.restart.value}{extra}"]
    lines = [
        f"{pad}+ {shown} [supervisor {node.strategy.value}, intensity {node.intensity}"
        f"/{node.period:g}s] restart={node.restart.value}"
    ]
    for index, child in enumerate(node.children):
        lines += _tree_lines(child, wiring, f"{path}.children[{index}]", depth + 1)  # type: ignore[arg-type]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phoenix", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a wiring file (exit 1 with every problem)")
    check.add_argument("file")
    tree = commands.add_parser("tree", help="print the supervision tree a wiring file describes")
    tree.add_argument("file")
    commands.add_parser("schema", help="print the JSON Schema of wiring files (for editors)")
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return 0
    try:
        wiring = load(args.file)
    except WiringError as exc:
        print(str(exc), file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {args.file}", file=sys.stderr)
        return 1
    if args.command == "check":
        print(f"{args.file}: ok ({len(wiring.agents)} agents)")
    else:
        print("\n".join(_tree_lines(wiring.root, wiring, "$.root", 0)))
    return 0
