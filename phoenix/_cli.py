"""``python -m phoenix check|tree|schema|init`` (or ``vibe-phoenix``): validate, show,
describe and start wiring files.

Exit codes: 0 when the file is valid (or for ``schema``, or once ``init`` has
written its file), 1 with one line per problem (never a traceback; for ``init``:
the file exists and ``--force`` was not given, or it cannot be written), 2 for a
usage error, 141 (128 + SIGPIPE, as a shell reports ``yes | head``) when the
output was closed early (``python -m phoenix schema | head``), quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from phoenix._default import default_wiring
from phoenix._errors import WiringError
from phoenix._load import Wiring, load
from phoenix._order import start_order
from phoenix._schema import SupervisorNode, WorkerNode, json_schema

__all__ = ["main"]

#: The exit code when stdout (or stderr) was closed before everything was written.
CLOSED_OUTPUT = 141


def _shown(value: str, path: str, wiring: Wiring) -> str:
    return "***" if path in wiring.secrets else value  # never echo a secret


def _tree_lines(
    node: SupervisorNode | WorkerNode, wiring: Wiring, path: str, depth: int
) -> list[str]:
    """``node`` and what it holds, children in start order (``depends_on`` applied)."""
    pad = "  " * depth
    shown = _shown(node.name, f"{path}.name", wiring)
    after = ", ".join(
        _shown(name, f"{path}.depends_on[{index}]", wiring)
        for index, name in enumerate(node.depends_on)
    )
    depends = f" depends_on=[{after}]" if after else ""
    if isinstance(node, WorkerNode):
        pool = f" pool={node.pool.size}x{node.pool.routing.value}" if node.pool else ""
        return [f"{pad}- {shown} [worker {node.agent}] restart={node.restart.value}{pool}{depends}"]
    dynamic = ""
    if node.dynamic:
        limit = "no limit" if node.max_children is None else f"max {node.max_children}"
        dynamic = f" dynamic ({limit}; templates: {', '.join(node.templates) or 'none'})"
    lines = [
        f"{pad}+ {shown} [supervisor {node.strategy.value}, intensity {node.intensity}"
        f"/{node.period:g}s] restart={node.restart.value}{depends}{dynamic}"
    ]
    children: list[SupervisorNode | WorkerNode] = node.children  # type: ignore[assignment]
    order = start_order([(child.name, child.depends_on) for child in children])
    for index in order if len(order) == len(children) else range(len(children)):
        child_path = f"{path}.children[{index}]"
        lines += _tree_lines(children[index], wiring, child_path, depth + 1)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _run(argv)
        finally:  # here, not at exit: a closed pipe is met where it is handled
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader left (``| head``): nothing more can be said, and nothing should be
        # said about it. Point both outputs at /dev/null so that the interpreter's
        # own flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            try:
                os.dup2(devnull, stream.fileno())
            except (OSError, ValueError):  # no file descriptor behind it (a test's capture)
                continue
        os.close(devnull)
        return CLOSED_OUTPUT


def _run(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phoenix", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a wiring file (exit 1 with every problem)")
    check.add_argument("file")
    tree = commands.add_parser(
        "tree", help="print the supervision tree a wiring file describes, in start order"
    )
    tree.add_argument("file")
    commands.add_parser("schema", help="print the JSON Schema of wiring files (for editors)")
    init = commands.add_parser(
        "init", help="write a starting wiring file: the shipped one, with the 13 system agents"
    )
    init.add_argument("file", nargs="?", default="wiring.yaml", help="default: wiring.yaml")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return 0
    if args.command == "init":
        return _init(args.file, force=args.force)
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


def _init(file: str, *, force: bool) -> int:
    """Write the shipped wiring to ``file``: 0, or 1 with one line if ``file`` exists
    (without ``force``; it is left untouched, and the check and the creation are one
    step, so no other writer can slip in between), if it cannot be written, or if the
    shipped wiring is missing (a broken install)."""
    try:
        text = default_wiring().read_bytes()
    except OSError as exc:
        print(f"phoenix init: {exc}", file=sys.stderr)
        return 1
    try:
        with open(file, "wb" if force else "xb") as handle:
            handle.write(text)
    except FileExistsError:
        print(f"{file}: already exists; pass --force to overwrite it", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{file}: cannot write: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"{file}: written; check it with `python -m phoenix check {file}`")
    return 0
