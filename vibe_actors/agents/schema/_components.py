"""JSON Schema components of message types, named as the public API shows them.

:func:`schema_components` is :func:`msgspec.json.schema_components` with the
names the documents show: msgspec names a component by its class, and by the
class's module too when two classes share a name (``Subscribe`` of pubsub, of
the registry and of webhooks); a system agent's message is defined in its
``protocol`` module but imported from the agent's package, so that is the
module its component names (``vibe_actors.agents.pubsub.Subscribe``). A
namespaced tag (``pubsub.Subscribe``) is shown as the type's HTTP name
(``Subscribe``, see :mod:`._http_names`): the ``type`` enums and the
discriminators' mappings say what the gateway sends and accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from vibe_actors._messages import HTTP_NAMES

__all__ = ["schema_components"]

#: ``vibe_actors.agents.<agent>.protocol.<Name>`` -> ``vibe_actors.agents.<agent>.<Name>``.
_PROTOCOL = re.compile(r"^(vibe_actors\.agents\.[A-Za-z0-9_]+)\.protocol\.")


def schema_components(
    types: Iterable[Any], ref_template: str = "#/$defs/{name}"
) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    """The references to ``types`` and every component they reach, named for the public API."""
    refs, components = msgspec.json.schema_components(list(types), ref_template=ref_template)
    for component in components.values():
        _show_http_names(component)
    renamed = {name: _PROTOCOL.sub(r"\1.", name) for name in components}
    if all(old == new for old, new in renamed.items()):
        return refs, components
    prefix = ref_template.removesuffix("{name}")
    refs = tuple(_renamed(ref, renamed, prefix) for ref in refs)
    return refs, {renamed[name]: _renamed(c, renamed, prefix) for name, c in components.items()}


def _renamed(schema: Any, renamed: dict[str, str], prefix: str) -> Any:
    """``schema`` with every ``$ref`` to a renamed component pointing at its new name."""
    if isinstance(schema, dict):
        return {
            key: (
                prefix + renamed.get(value.removeprefix(prefix), value.removeprefix(prefix))
                if key == "$ref" and isinstance(value, str) and value.startswith(prefix)
                else _renamed(value, renamed, prefix)
            )
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_renamed(item, renamed, prefix) for item in schema]
    return schema


def _show_http_names(schema: Any) -> None:
    """Namespaced tags in ``schema`` (``type`` enums, discriminator mappings) as HTTP names."""
    if isinstance(schema, dict):
        tag = schema.get("properties", {}).get("type") if "properties" in schema else None
        if isinstance(tag, dict) and isinstance(tag.get("enum"), list):
            tag["enum"] = [HTTP_NAMES.get(v, v) if isinstance(v, str) else v for v in tag["enum"]]
        mapping = (
            schema.get("discriminator", {}).get("mapping") if "discriminator" in schema else None
        )
        if isinstance(mapping, dict):
            schema["discriminator"]["mapping"] = {
                HTTP_NAMES.get(k, k): v for k, v in mapping.items()
            }
        for value in schema.values():
            _show_http_names(value)
    elif isinstance(schema, list):
        for item in schema:
            _show_http_names(item)
