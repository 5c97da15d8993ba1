"""The schema agent's settings, messages and replies (re-exported by
:mod:`vibe_actors.agents.schema`); other agents import them from here.
"""

from __future__ import annotations

from typing import Any

import msgspec

from vibe_actors import Message
from vibe_actors._messages import namespaced

__all__ = [
    "Catalogue",
    "CatalogueReply",
    "Diagram",
    "MermaidDiagram",
    "OpenAPI",
    "OpenAPIDocument",
    "SchemaConfig",
]


_tag = namespaced("schema")


class _Message(Message, tag=_tag):
    """Base of the schema agent's messages: tagged ``schema.<ClassName>`` on the wire,
    named by the class name over HTTP."""


class SchemaConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of :class:`Schema`."""

    title: str = "vibe-actors"
    version: str = "1"


class Catalogue(_Message):
    """Ask for every agent's message schemas."""


class CatalogueReply(_Message):
    """Agent name -> message tag -> JSON Schema."""

    agents: dict[str, dict[str, Any]]


class OpenAPI(_Message):
    """Ask for the OpenAPI 3.1 document of the HTTP gateway's agent API."""


class OpenAPIDocument(_Message):
    document: dict[str, Any]


class Diagram(_Message):
    """Ask for a Mermaid diagram of the supervision tree."""


class MermaidDiagram(_Message):
    text: str
