"""Which YAML tags a wiring file may hold, and how a plain scalar is typed.

A wiring file is plain data: :func:`tag_problem` says why a node's tag has no
place in one (``!!python/object:...``, ``!foo``, ``!!binary``, ``!!int abc``),
before any YAML constructor sees the node. :func:`plain_value` types a value
taken from the environment as YAML would type it in a plain scalar, without
parsing it as YAML.
"""

from __future__ import annotations

from typing import cast

import yaml

__all__ = [
    "CORE",
    "ENVIRONMENT_TAGS",
    "MAP",
    "SCALAR_TAGS",
    "SEQ",
    "STR",
    "TYPE_WORDS",
    "plain_tag",
    "plain_value",
    "shown_tag",
    "tag_problem",
]

CORE = "tag:yaml.org,2002:"
MAP, SEQ, STR = CORE + "map", CORE + "seq", CORE + "str"
#: The scalar types a wiring value may have besides text: YAML's core types, and dates
#: (the safe loader reads an unquoted 2024-01-31 as one). Never !!binary, !!set, a
#: language's object tags, or a tag of one's own.
SCALAR_TAGS = frozenset(CORE + kind for kind in ("int", "float", "bool", "null", "timestamp"))
#: What a value taken from the environment may become besides text (as before: never
#: null or a date, which would surprise more than help).
ENVIRONMENT_TAGS = frozenset(CORE + kind for kind in ("int", "float", "bool"))
TYPE_WORDS = {CORE + "timestamp": "date", CORE + "int": "integer", CORE + "float": "number"}
_RESOLVER = yaml.resolver.Resolver()


def shown_tag(tag: str) -> str:
    """A tag as it is written in a file: ``!!python/object:os.system``, ``!foo``."""
    return "!!" + tag.removeprefix(CORE) if tag.startswith(CORE) else tag


def plain_tag(text: str) -> str:
    """The tag YAML gives ``text`` as an untagged plain scalar (8080: !!int)."""
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
    return tag


def tag_problem(node: yaml.Node, *, key: bool = False) -> str | None:
    """Why ``node``'s YAML tag has no place in a wiring file, or None.

    A wiring file is plain data: a tag may say what the node is anyway (``!!int 5``)
    or make a scalar text (``!!str 5``). Anything else (``!!python/object:...``,
    ``!foo``, ``!!binary``, ``!!set``, ``!!int abc``) is a problem and never reaches a
    YAML constructor. A key is only ever read as text: its plain type does not matter.
    """
    fitting, what = _fitting_tags(node)
    tag = node.tag
    if tag not in fitting:
        if tag in SCALAR_TAGS or tag == STR:
            return f"YAML tag {shown_tag(tag)} does not fit {what} (remove the tag)"
        return (
            f"YAML tag {shown_tag(tag)} is not supported: a wiring file holds plain"
            " mappings, lists, text, numbers, booleans, null and dates"
            " (quote a value or write !!str to make it text)"
        )
    if key or tag in SCALAR_TAGS or tag in (MAP, SEQ, STR):
        return None
    # An untagged plain scalar that YAML types as no value: << (a merge key), = ("value").
    return f"{what} is a YAML {shown_tag(tag)}, not a value: quote it to make it text"


def _fitting_tags(node: yaml.Node) -> tuple[tuple[str, ...], str]:
    """The tags ``node`` may have, and how a message names it."""
    if isinstance(node, yaml.MappingNode):
        return (MAP,), "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return (SEQ,), "a list"
    text = cast(yaml.ScalarNode, node).value
    return (plain_tag(text), STR), repr(text)


def plain_value(text: str) -> str | int | float | bool:
    """``text`` (substituted into a plain scalar) typed as YAML types a plain scalar:
    an integer, a number, a boolean, else text.

    Only the resolver's patterns are matched: the text is never parsed as YAML, so a
    value holding ``: ``, ``{``, ``[``, ``#``, a tag, an alias or a line break stays
    that text, one scalar, and cannot add structure to the file. Surrounding
    whitespace is dropped, as a plain scalar has none (a secret read from a file
    often ends with a line break).
    """
    stripped = text.strip()
    tag = plain_tag(stripped)
    if tag not in ENVIRONMENT_TAGS:
        return stripped
    constructor = yaml.constructor.SafeConstructor()
    try:
        value: int | float | bool = constructor.construct_object(yaml.ScalarNode(tag, stripped))
    except ValueError:  # it matched the pattern yet is none (0b_): text, for the field to check
        return stripped
    return value
