"""Entity kinds in wiring.yaml: built into the tree, and every mistake named with its place."""

from __future__ import annotations

import textwrap

import pytest

import phoenix
from vibe_actors import EntitySpec, EntityState

from tests.phoenix.agents import Visit, Visitor


def _load(body: str):
    return phoenix.load_text(textwrap.dedent(body), "wiring.yaml")


KIND = """
    version: 1
    root:
      name: root
      children:
        - name: visitors
          entity:
            agent: tests.phoenix.agents:Visitor
            shards: 3
            passivate_after: 2m
            max_active: 5000
            state: durable
          config: {step: 2}
"""


def test_an_entity_node_builds_an_entity_kind(tmp_path):
    root, _ = phoenix.build(_load(KIND))
    (spec,) = root.children
    assert spec.agent is Visitor
    assert spec.entity == EntitySpec(
        shards=3, passivate_after=120.0, max_active=5000, state=EntityState.DURABLE
    )
    wiring = tmp_path / "wiring.yaml"
    wiring.write_text(textwrap.dedent(KIND))
    system = phoenix.boot(wiring, data_dir=str(tmp_path / "data"))
    try:
        visitor = system.entity("visitors", "ann")
        assert visitor.ask(Visit()).visits == 2
        assert visitor.ask(Visit()).visits == 4
        assert [c.name for c in system.tree().children[0].children] == [
            "visitors.1",
            "visitors.2",
            "visitors.3",
        ]
    finally:
        system.shutdown()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "entity: {agent: tests.phoenix.agents:Counter}",
            "$.root.children[0].entity.agent: 'tests.phoenix.agents:Counter' is not a "
            "vibe_actors.Entity subclass",
        ),
        (
            "entity: {agent: tests.phoenix.agents:Visitor, shards: 0}",
            "$.root.children[0].entity.shards: expected int >= 1 <= 1024, got 0",
        ),
        (
            "entity: {agent: tests.phoenix.agents:Visitor, state: disk}",
            "$.root.children[0].entity.state: expected memory|durable, got 'disk'",
        ),
        (
            "agent: tests.phoenix.agents:Visitor\n          entity: {agent: tests.phoenix.agents:Visitor}",
            "$.root.children[0].agent: an entity kind names its class in entity.agent",
        ),
        (
            "entity: {agent: tests.phoenix.agents:Visitor}\n          pool: {size: 2}",
            "$.root.children[0].pool: an entity kind has shards (entity.shards), not a pool",
        ),
        (
            "entity: {agent: tests.phoenix.agents:Visitor}\n          config: {stride: 2}",
            "$.root.children[0].config.stride: unknown field 'stride' (expected one of: step)",
        ),
    ],
)
def test_entity_mistakes_are_named(body, expected):
    text = f"""
    version: 1
    root:
      name: root
      children:
        - name: visitors
          {body}
    """
    with pytest.raises(phoenix.WiringError) as error:
        _load(text)
    assert expected in str(error.value)


def test_shard_names_are_claimed():
    text = """
    version: 1
    root:
      name: root
      children:
        - name: visitors
          entity: {agent: tests.phoenix.agents:Visitor, shards: 2}
        - name: visitors.2
          agent: tests.phoenix.agents:Counter
    """
    with pytest.raises(phoenix.WiringError, match="duplicate name 'visitors.2'"):
        _load(text)
