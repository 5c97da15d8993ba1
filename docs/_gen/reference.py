"""Markdown for the generated reference pages (used by gen_pages.py; importable for tests)."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

import phoenix
from phoenix import SupervisorNode, WorkerNode
from vibe_actors import Agent, ErrorReply, Message
from vibe_actors.agents.schema import agent_schemas

__all__ = [
    "agent_modules",
    "agent_page",
    "agents_index",
    "events_rows",
    "metrics_rows",
    "observability_page",
    "plain",
    "wiring_page",
]

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`~?([^`]+)`")


def plain(text: str | None) -> str:
    """A docstring's text for a Markdown table cell (reST roles as code, one line)."""
    if not text:
        return ""
    text = _ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    text = text.replace("``", "`")
    return " ".join(text.split()).replace("|", "\\|")


def markdown(text: str | None) -> str:
    """A module docstring as Markdown (reST roles and double backticks as code)."""
    text = inspect.cleandoc(text or "")
    text = _ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    return text.replace("``", "`").replace("::\n", ":\n")


def first_paragraph(text: str | None) -> str:
    return plain((text or "").strip().split("\n\n", 1)[0])


def type_of(schema: dict[str, Any], link: bool = False) -> str:
    """A short type name for a JSON Schema fragment (``link``: named types link to their heading)."""
    if "$ref" in schema:
        name: str = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})" if link else name
    if "anyOf" in schema:
        return " \\| ".join(type_of(s, link) for s in schema["anyOf"])
    if "enum" in schema:
        return " \\| ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{type_of(schema.get('items', {}), link)}]"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"dict[str, {type_of(schema['additionalProperties'], link)}]"
    return {"integer": "int", "number": "float", "string": "str", "boolean": "bool"}.get(
        kind, str(kind)
    )


def _default(prop: dict[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" not in prop:
        return ""
    return f"`{json.dumps(prop['default'])}`"


def fields_table(component: dict[str, Any], link: bool = False) -> list[str]:
    """A key | type | default table of one object schema."""
    props = {k: v for k, v in component.get("properties", {}).items() if k != "type"}
    if not props:
        return ["No fields."]
    required = set(component.get("required", ()))
    rows = ["| key | type | default |", "| --- | --- | --- |"]
    for key, prop in props.items():
        kind = type_of(prop, link)
        rows.append(f"| `{key}` | {kind} | {_default(prop, key in required)} |")
    return rows


def _components(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from schema.get("$defs", {}).items()


def wiring_page() -> str:
    schema = phoenix.json_schema()
    lines = [
        "# wiring.yaml reference",
        "",
        "Generated from the JSON Schema phoenix validates against "
        "(`python -m phoenix schema` prints it; point your editor's YAML language server at it). "
        "Check a file with `python -m phoenix check wiring.yaml`; print the tree it describes "
        "with `python -m phoenix tree wiring.yaml`. Values may use `${VAR}` or "
        "`${VAR:-default}` to read the environment; secrets belong there, never in the file.",
        "",
        "A node under `children` is a **supervisor** when it has `children`, "
        "otherwise a **worker** (it has `agent: module:Class`). An agent's `config:` block is "
        "checked against its `Config` struct: each system agent's page under "
        "[System agents](../agents/index.md) lists its keys.",
        "",
    ]
    for name, component in _components(schema):
        lines += [f"## {name}", ""]
        if component.get("description"):
            lines += [plain(component["description"]), ""]
        if "properties" in component:
            lines += fields_table(component, link=True)
        elif "enum" in component:
            lines.append("One of: " + ", ".join(f"`{v}`" for v in component["enum"]) + ".")
        else:
            lines.append(f"`{json.dumps(component)}`")
        lines.append("")
    lines += [
        "## The whole schema",
        "",
        '??? note "JSON Schema (`python -m phoenix schema`)"',
        "",
        "    ```json",
        *("    " + line for line in json.dumps(schema, indent=2).splitlines()),
        "    ```",
        "",
    ]
    return "\n".join(lines)


def _walk(node: SupervisorNode | WorkerNode) -> Iterator[WorkerNode]:
    if isinstance(node, WorkerNode):
        yield node
    else:
        for child in node.children:
            yield from _walk(child)  # type: ignore[arg-type]


def agent_modules(wiring: Path) -> dict[str, list[WorkerNode]]:
    """Module of each system agent in the shipped wiring -> its worker nodes, in tree order."""
    modules: dict[str, list[WorkerNode]] = {}
    for node in _walk(phoenix.load(wiring).root):
        module = node.agent.split(":", 1)[0]
        if module.startswith("vibe_actors.agents."):
            modules.setdefault(module, []).append(node)
    return modules


def _agent_class(node: WorkerNode) -> type[Agent]:
    module, _, name = node.agent.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def agents_index(modules: dict[str, list[WorkerNode]]) -> str:
    lines = [
        "# System agents",
        "",
        "The system agents ship with the runtime (`vibe_actors.agents`); the shipped "
        "`wiring.yaml` starts all of them. Every message is also an HTTP call: "
        "`POST /v1/agents/{agent}/{Message}` with the fields as JSON. This page and the "
        "agents' pages are generated from the agent classes at build time.",
        "",
        "| agent | class | what it does | messages |",
        "| --- | --- | --- | --- |",
    ]
    for module, nodes in modules.items():
        page = module.rsplit(".", 1)[1]
        for node in nodes:
            cls = _agent_class(node)
            messages = ", ".join(t.__name__ for t in cls.message_types() if t.__name__ != "Ping")
            summary = first_paragraph(importlib.import_module(module).__doc__)
            lines.append(
                f"| [{node.name}]({page}.md) | `{cls.__name__}` | {summary} | {messages} |"
            )
    return "\n".join(lines) + "\n"


def _reply_cell(cls: type[Agent], message_type: type) -> str:
    cells = []
    for reply in cls.reply_types(message_type):
        if isinstance(reply, type) and issubclass(reply, ErrorReply):
            cells.append(f"`{reply.__name__}` ({reply.http_status})")
        elif isinstance(reply, type):
            cells.append(f"`{reply.__name__}`")
    return ", ".join(cells) or "none (tell)"


def _message_rows(cls: type[Agent]) -> list[str]:
    types = {t.__name__: t for t in cls.message_types()}
    schemas = agent_schemas(types)
    rows = ["| message | fields | replies | what it does |", "| --- | --- | --- | --- |"]
    for tag, message_type in types.items():
        schema = schemas[tag]
        required = set(schema.get("required", ()))
        fields = ", ".join(
            f"`{key}`: {type_of(prop)}" + ("" if key in required else " = " + _short(prop))
            for key, prop in schema.get("properties", {}).items()
            if key != "type"
        )
        rows.append(
            f"| `{tag}` | {fields or '—'} | {_reply_cell(cls, message_type)} "
            f"| {first_paragraph(message_type.__doc__)} |"
        )
    return rows


def _short(prop: dict[str, Any]) -> str:
    return f"`{json.dumps(prop.get('default'))}`"


def _reply_types(cls: type[Agent]) -> list[type[Message]]:
    seen: dict[str, type[Message]] = {}
    for message_type in cls.message_types():
        for reply in cls.reply_types(message_type):
            if isinstance(reply, type) and issubclass(reply, Message):
                seen.setdefault(reply.__name__, reply)
    return list(seen.values())


def _reply_rows(cls: type[Agent]) -> list[str]:
    rows = ["| reply | fields | HTTP status |", "| --- | --- | --- |"]
    replies = _reply_types(cls)
    schemas = agent_schemas({t.__name__: t for t in replies})
    for reply in replies:
        props = schemas[reply.__name__].get("properties", {})
        fields = ", ".join(f"`{k}`: {type_of(v)}" for k, v in props.items() if k != "type")
        status = reply.http_status if issubclass(reply, ErrorReply) else 200
        rows.append(f"| `{reply.__name__}` | {fields or '—'} | {status} |")
    return rows


def _config_rows(cls: type[Agent]) -> list[str]:
    config = getattr(cls, "Config", None)
    if config is None or not isinstance(config, type) or not issubclass(config, msgspec.Struct):
        return ["This agent takes no `config:` block."]
    schema = msgspec.json.schema(config)
    lines: list[str] = []
    for name, component in _components(schema):
        heading = "`config:`" if name == config.__name__ else f"`{name}`"
        lines += [f"**{heading}** — {plain(component.get('description')) or name}", ""]
        lines += [*fields_table(component), ""]
    return lines


def agent_page(module: str, nodes: list[WorkerNode]) -> str:
    lines = [f"# {module.rsplit('.', 1)[1]}", ""]
    lines += [f"`{module}` — in the shipped wiring.yaml as:", ""]
    for node in nodes:
        pool = f", a pool of {node.pool.size}" if node.pool else ""
        lines.append(f"- `{node.name}`: `{node.agent}`{pool}")
    lines += ["", "## Guarantees", "", markdown(importlib.import_module(module).__doc__), ""]
    done: set[type[Agent]] = set()
    for node in nodes:
        cls = _agent_class(node)
        if cls in done:
            continue
        done.add(cls)
        lines += [f"## {cls.__name__}: messages", ""]
        lines += [f"`{node.name}` accepts (as `POST /v1/agents/{node.name}/{{Message}}`):", ""]
        lines += [*_message_rows(cls), ""]
        lines += [f"### {cls.__name__}: replies", "", *_reply_rows(cls), ""]
        lines += [f"### {cls.__name__}: configuration", "", *_config_rows(cls), ""]
    lines += ["## API", ""]
    for name in importlib.import_module(module).__all__:
        lines += [f"::: {module}.{name}", "    options:", "      heading_level: 3", ""]
    return "\n".join(lines)


_METRIC = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary|CounterMetricFamily|GaugeMetricFamily|"
    r"HistogramMetricFamily)\(\s*\"(vibe_\w+)\",\s*\"([^\"]*)\""
    r"(?:,\s*(?:labels=|labelnames=)?(?:\[([^\]]*)\]|\b(\w+)\b(?!\s*=)))?"
)
_EVENT = re.compile(r"\.(debug|info|warning|error|exception|critical)\(\s*\"([a-z][a-z0-9_]+)\"")
_KINDS = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary"}


def _sources(repo: Path) -> Iterator[tuple[str, str]]:
    for package in ("vibe_actors", "phoenix", "gateway"):
        for path in sorted((repo / package).rglob("*.py")):
            module = ".".join(path.relative_to(repo).with_suffix("").parts)
            yield module.removesuffix(".__init__"), path.read_text()


def metrics_rows(repo: Path) -> list[str]:
    """Every vibe_* metric defined in the source: name, type, labels, help, where."""
    rows = ["| metric | type | labels | meaning | defined in |", "| --- | --- | --- | --- | --- |"]
    for module, text in _sources(repo):
        for kind, name, doc, labels, variable in _METRIC.findall(text):
            kind = _KINDS[kind.removesuffix("MetricFamily")]
            if kind == "counter" and not name.endswith("_total"):
                name += "_total"  # prometheus_client exposes counters with the suffix
            label_names = ", ".join(x.strip().strip("\"'") for x in labels.split(",") if x.strip())
            if variable:  # the label names are in a list variable of the same module
                found = re.search(rf"^\s*{variable}\s*=\s*\[([^\]]*)\]", text, re.MULTILINE)
                labels = found.group(1) if found else ""
                label_names = ", ".join(x.strip().strip("\"'") for x in labels.split(",") if x)
            rows.append(f"| `{name}` | {kind} | {label_names} | {plain(doc)} | `{module}` |")
    return rows


def events_rows(repo: Path) -> list[str]:
    """Every structlog event name emitted in the source, with its level(s) and modules."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for module, text in _sources(repo):
        for level, event in _EVENT.findall(text):
            levels, modules = found.setdefault(event, (set(), set()))
            levels.add("error" if level == "exception" else level)
            modules.add(f"`{module}`")
    rows = ["| event | level | emitted by |", "| --- | --- | --- |"]
    for event, (levels, modules) in sorted(found.items()):
        rows.append(f"| `{event}` | {', '.join(sorted(levels))} | {', '.join(sorted(modules))} |")
    return rows


def observability_page(repo: Path) -> str:
    return "\n".join(
        [
            "# Metrics and log events",
            "",
            "Generated at build time from the source of `vibe_actors`, `phoenix` and "
            "`gateway`: every Prometheus metric they define and every structlog event "
            "they emit. How to use them: [Observability](../guides/observability.md).",
            "",
            "## Metrics",
            "",
            *metrics_rows(repo),
            "",
            "## Log events",
            "",
            *events_rows(repo),
            "",
        ]
    )
