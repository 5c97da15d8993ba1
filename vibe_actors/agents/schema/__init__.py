"""Schema: the message catalogue of the running system, as data.

* ``Catalogue{}`` -> ``CatalogueReply``: for every agent that receives
  messages (workers, pools and pool workers; not supervisors), the JSON
  Schema of each message type by tag. The shape is the gateway's
  (``gateway/_catalog.py``: tag -> the type's schema component); when a type
  refers to other structs, their components ride along in ``$defs`` so each
  schema stands alone.
* ``OpenAPI{}`` -> ``OpenAPIDocument``: an OpenAPI 3.1 document with a
  ``POST /v1/agents/{name}/{Type}`` operation per agent and message type, its
  request body, the 200 reply schemas (from the handler's return annotation)
  and the gateway's problem+json error responses, plus the status of every
  error reply the handler declares, and a 204 when its return annotation
  admits None (the gateway answers a None reply with 204 No Content).
* ``Diagram{}`` -> ``MermaidDiagram``: a Mermaid ``graph TD`` of the
  supervision tree, with each supervisor's strategy and each child's restart
  type.

Everything is built on demand from the live system and cached until the tree
changes: a ``TreeReloaded`` event drops the cache, and so does any change of
the tree's shape seen at the next request (a temporary child removed, a pool
worker replaced). The cache is per incarnation; a restart rebuilds on demand
and loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import msgspec

from vibe_actors import ActorSystem, Agent, RuntimeEvent, TreeReloaded, handler
from vibe_actors.agents.schema._documents import (
    ERROR_RESPONSES,
    TIMEOUT_HEADER,
    TIMEOUT_MS_DIGITS,
    FieldError,
    Problem,
    catalogue,
    mermaid,
    openapi,
    replies_none,
)
from vibe_actors.agents.schema._documents import agent_schemas as agent_schemas
from vibe_actors.agents.schema._documents import error_replies as error_replies
from vibe_actors.agents.schema._documents import tagged_types as tagged_types
from vibe_actors.agents.schema._http_names import http_json, http_name, retagged
from vibe_actors.agents.schema.protocol import (
    Catalogue,
    CatalogueReply,
    Diagram,
    MermaidDiagram,
    OpenAPI,
    OpenAPIDocument,
    SchemaConfig,
)

__all__ = [
    "Catalogue",
    "CatalogueReply",
    "Diagram",
    "MermaidDiagram",
    "OpenAPI",
    "OpenAPIDocument",
    "ERROR_RESPONSES",
    "TIMEOUT_HEADER",
    "TIMEOUT_MS_DIGITS",
    "FieldError",
    "Problem",
    "Schema",
    "SchemaConfig",
    "catalogue",
    "http_json",
    "http_name",
    "mermaid",
    "openapi",
    "replies_none",
    "retagged",
    "tree_shape",
]


# -- the agent ----------------------------------------------------------------------------


def tree_shape(system: ActorSystem) -> tuple[tuple[str, ...], ...]:
    """What the cached documents depend on: names, kinds, classes, strategies, restarts."""
    return tuple(
        (node.name, node.kind, node.agent, node.strategy or "", node.restart)
        for node in system.walk()
    )


class Schema(Agent[Catalogue | OpenAPI | Diagram]):
    """The message catalogue: ``Catalogue``, ``OpenAPI`` and ``Diagram`` (see the module)."""

    Config: ClassVar = SchemaConfig

    def on_start(self) -> None:
        self._settings = self.config
        self._cache: dict[str, bytes] = {}
        self._cached_shape: tuple[tuple[str, ...], ...] = ()
        self._stale = False
        self._unsubscribe: Callable[[], None] | None = self.system.events.subscribe(self._on_event)

    def on_stop(self) -> None:
        self._release()

    def on_failure(self, error: BaseException) -> None:
        self._release()

    def _release(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_event(self, event: RuntimeEvent) -> None:
        # Runs in the publisher's thread: only flag; the next request rebuilds.
        if isinstance(event, TreeReloaded):
            self._stale = True

    def _cached(self, key: str, build: Callable[[], Any]) -> Any:
        shape = tree_shape(self.system)
        if self._stale or shape != self._cached_shape:
            self._stale = False
            self._cache.clear()
            self._cached_shape = shape
            self.log.debug("schema_cache_cleared", agents=len(shape))
        if key not in self._cache:
            self._cache[key] = msgspec.msgpack.encode(build())
        return msgspec.msgpack.decode(self._cache[key])  # a fresh copy: callers may mutate it

    @handler
    def catalogue(self, msg: Catalogue) -> CatalogueReply:
        return CatalogueReply(agents=self._cached("catalogue", lambda: catalogue(self.system)))

    @handler
    def openapi(self, msg: OpenAPI) -> OpenAPIDocument:
        settings = self._settings
        document = self._cached(
            "openapi", lambda: openapi(self.system, settings.title, settings.version)
        )
        return OpenAPIDocument(document=document)

    @handler
    def diagram(self, msg: Diagram) -> MermaidDiagram:
        return MermaidDiagram(text=self._cached("diagram", lambda: mermaid(self.system.tree())))
