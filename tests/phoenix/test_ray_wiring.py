"""``placement: ray`` and the ``ray:`` settings in a wiring: validated without Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

import phoenix
from vibe_actors.ray import INSTALL_HINT, RaySettings

WIRINGS = Path(__file__).parent / "ray_wirings"


def _problems(name: str) -> list[str]:
    with pytest.raises(phoenix.WiringError) as raised:
        phoenix.load(WIRINGS / name)
    return [str(p).split("ray_wirings/", 1)[1] for p in raised.value.problems]


def test_ray_settings_and_placement_are_validated_with_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("phoenix._load.ray_available", lambda: True)
    assert _problems("ray_placement.yaml") == [
        "ray_placement.yaml:7:5: $.ray.resources.nobody: 'nobody' is not a worker with "
        "placement: ray",
        "ray_placement.yaml:8:3: $.ray.bogus: unknown field 'bogus' (expected one of: address, "
        "local_cpus, max_in_flight, namespace, num_cpus, resources, temp_dir)",
        "ray_placement.yaml:17:18: $.root.children[1].placement: expected 'local'|'ray', "
        "got 'cloud'",
    ]


def test_missing_ray_extra_is_a_wiring_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("phoenix._load.ray_available", lambda: False)
    assert _problems("ray_ok.yaml") == [
        f"ray_ok.yaml:11:18: $.root.children[0].placement: {INSTALL_HINT}",
        f"ray_ok.yaml:15:18: $.root.children[1].placement: {INSTALL_HINT}",
    ]


def test_replies_that_cannot_cross_are_a_wiring_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("phoenix._load.ray_available", lambda: True)
    (problem,) = _problems("ray_ambiguous.yaml")
    assert problem.startswith(
        "ray_ambiguous.yaml:7:18: $.root.children[0].placement: Ambiguous: the replies "
        "declared for Read cannot cross to Ray as one msgpack union"
    )


def test_ray_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("phoenix._load.ray_available", lambda: True)
    wiring = phoenix.load(WIRINGS / "ray_ok.yaml")
    assert wiring.ray.namespace == "vibe-phoenix"
    assert wiring.ray.for_agent("tallies.2").num_cpus == 0
    assert wiring.root.children[0].placement == "ray"  # type: ignore[union-attr]
    assert wiring.root.children[2].placement == "local"  # type: ignore[union-attr]
    local = "root: {name: root, children: [{name: t, agent: 'tests.ray.agents:Tally'}]}"
    assert phoenix.load_text(local).ray == RaySettings()


def test_json_schema_describes_ray() -> None:
    schema = phoenix.json_schema()
    assert "ray" in schema["$defs"]["WiringFile"]["properties"]
    assert schema["$defs"]["WorkerNode"]["properties"]["placement"]["enum"] == ["local", "ray"]


def test_an_entity_kind_may_be_placed_on_ray_with_memory_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("phoenix._load.ray_available", lambda: True)
    assert _problems("ray_entities.yaml") == [
        "ray_entities.yaml:17:18: $.root.children[1].placement: an entity kind with state: "
        "durable runs locally: placement: ray takes state: memory only (the entities' Ray "
        "side has no store)",
    ]


def test_an_entity_kind_on_ray_needs_the_ray_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("phoenix._load.ray_available", lambda: False)
    assert _problems("ray_entities.yaml") == [
        f"ray_entities.yaml:10:18: $.root.children[0].placement: {INSTALL_HINT}",
        f"ray_entities.yaml:17:18: $.root.children[1].placement: {INSTALL_HINT}",
    ]


def test_an_entity_kind_on_ray_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("phoenix._load.ray_available", lambda: True)
    text = (WIRINGS / "ray_entities.yaml").read_text()
    wiring = phoenix.load_text(text.split("    - name: vaults")[0])
    kind = wiring.root.children[0]
    assert kind.placement == "ray"  # type: ignore[union-attr]
    assert wiring.ray.for_agent("wallets.2").num_cpus == 0
