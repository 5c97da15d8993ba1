"""Placing an agent on Ray: the proxy class generated for a hosted Agent class.

One proxy class per hosted class and settings (cached, so that the same wiring
builds equal specs, which live reload compares). It declares the hosted
class's message types (each forwarded), reply annotations, ``Config`` and
name, so everything that describes agents shows the same agent.
"""

from __future__ import annotations

import threading
import typing
from typing import Any

from vibe_actors._agent import Agent
from vibe_actors._codec import encode_msgpack
from vibe_actors._entity import Entity
from vibe_actors._handlers import handler
from vibe_actors.ray._entity_proxy import placed_entity
from vibe_actors.ray._host import forwarded_types, reply_targets, return_annotation
from vibe_actors.ray._proxy import RayProxy
from vibe_actors.ray._settings import RaySettings

__all__ = ["placed"]

_lock = threading.Lock()
_placed: dict[tuple[type, bytes], type[RayProxy]] = {}


def placed(hosted: type, settings: RaySettings | None = None) -> type:
    """The proxy class that runs ``hosted`` on Ray (one class per hosted class and settings).

    It declares the hosted class's message types, reply annotations, ``Config`` and
    name (``module:Class``), so everything that describes agents shows the same
    agent; ``placement`` tells them apart. Raises ``TypeError`` if a handler's
    declared replies cannot be decoded as one msgpack union. An Entity class is
    placed by :func:`vibe_actors.ray._entity_proxy.placed_entity` instead.
    """
    settings = settings or RaySettings()
    if issubclass(hosted, Entity):
        return placed_entity(hosted, settings)
    if not issubclass(hosted, Agent) or issubclass(hosted, RayProxy):
        raise TypeError(f"{hosted.__qualname__} is not an Agent class that can be placed on Ray")
    # Cached, so that the same wiring builds equal specs (live reload compares them).
    key = (hosted, encode_msgpack(settings))
    with _lock:
        if key not in _placed:
            _placed[key] = _make_proxy(hosted, settings)
        return _placed[key]


def _make_proxy(hosted: type[Agent], settings: RaySettings) -> type[RayProxy]:
    namespace: dict[str, Any] = {
        "hosted": hosted,
        "settings": settings,
        "Config": hosted.Config,
        "__module__": hosted.__module__,
        "__qualname__": hosted.__qualname__,
        "__doc__": hosted.__doc__,
        "_replies": reply_targets(hosted),
        "_declared": hosted.declared_messages(),
    }
    for message_type in forwarded_types(hosted):  # Ping: the proxy's own, forwarded
        returns = return_annotation(hosted, message_type)
        namespace[f"_forward_{message_type.__name__}"] = _forwarder(message_type, returns)
    proxy = typing.cast("type[RayProxy]", type(hosted.__name__, (RayProxy,), namespace))
    return proxy


def _forwarder(message_type: type, returns: Any) -> Any:
    def forward(self: RayProxy, msg: Any) -> Any:
        self._forward(msg)

    forward.__annotations__ = {"msg": message_type, "return": returns}
    forward.__name__ = forward.__qualname__ = f"_forward_{message_type.__name__}"
    return handler(forward)
