"""A wiring with ``placement: ray`` boots, serves and describes itself like a local one."""

from __future__ import annotations

from pathlib import Path

import phoenix
from vibe_actors.agents.introspect import describe
from vibe_actors.ray import RaySettings

from tests.ray.agents import Add, Read

WIRING = Path(__file__).parents[1] / "phoenix" / "ray_wirings" / "ray_ok.yaml"


def test_wiring_places_workers_on_ray(ray_settings: RaySettings, tmp_path: Path) -> None:
    root, _ = phoenix.build(phoenix.load(WIRING))
    placed = {child.name: getattr(child.agent, "_placement", "local") for child in root.children}
    assert placed == {"tally": "ray", "tallies": "ray", "local-tally": "local"}
    system = phoenix.boot(WIRING, data_dir=str(tmp_path), serialize_messages=True)
    try:
        assert system.ref("tally").ask(Add(amount=2), timeout=10).value == 5
        pids = {system.ref(f"tallies.{i}").ask(Read(), timeout=10).pid for i in (1, 2)}
        local = system.ref("local-tally").ask(Read(), timeout=10).pid
        assert len(pids) == 2 and local not in pids
        views = {view.name: view.placement for view in describe(system)}
        assert views["tally"] == views["tallies"] == "ray"
        assert views["local-tally"] == "local"
    finally:
        assert system.shutdown(timeout=30)
