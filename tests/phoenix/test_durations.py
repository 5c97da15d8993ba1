"""Durations: a unit anywhere (``250ms``, ``10s``, ``1m``), a plain number in the field's
own unit (milliseconds for ``shutdown``, seconds elsewhere), and errors that say both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import phoenix

ROOT = Path(__file__).resolve().parents[2]
WORKER = "tests.vibe_actors.agents:Worker"
UNITS = "a number with a unit, ms, s, m or h (250ms, 10s, 1m); a plain number here is"


def built(worker: str = "", supervisor: str = "", system: str = "") -> tuple:
    text = (
        f"version: 1\nsystem:\n  serialize_messages: false\n{system}"
        f"root:\n  name: root\n{supervisor}  children:\n"
        f"    - name: a\n      agent: {WORKER}\n{worker}"
    )
    root, config = phoenix.build(phoenix.load_text(text))
    return root, root.children[0], config


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(phoenix.WiringError) as info:
        phoenix.load_text(text, environ=environ or {})
    return [str(problem) for problem in info.value.problems]


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("10s", 10.0),
        ("250ms", 0.25),
        ("1m", 60.0),
        ("1.5s", 1.5),
        ("1.1s", 1.1),
        ("1h", 3600.0),
        ("0s", 0.0),
        ("10000", 10.0),  # a plain number keeps its unit: milliseconds, as in OTP
        ("0", 0.0),
        ("brutal_kill", "brutal_kill"),
    ],
)
def test_shutdown_takes_a_unit_and_a_plain_number_is_milliseconds(written, seconds):
    _, worker, _ = built(worker=f"      shutdown: {written}\n")
    assert worker.shutdown == seconds


@pytest.mark.parametrize(
    ("written", "seconds"), [("30s", 30.0), ("1m", 60.0), ("500ms", 0.5), ("30", 30.0)]
)
def test_every_other_duration_takes_a_unit_and_a_plain_number_is_seconds(written, seconds):
    root, worker, config = built(
        worker=f"      mailbox: {{block_timeout: {written}}}\n",
        supervisor=(
            f"  period: {written}\n  shutdown: {written.replace('30', '30000')}\n"
            f"  backoff: {{min: {written}, max: {written}, reset_after: {written}}}\n"
        ),
        system=f"  ask_timeout: {written}\n  start_timeout: {written}\n",
    )
    assert root.period == seconds
    assert (root.backoff.min, root.backoff.max, root.backoff.reset_after) == (seconds,) * 3
    assert worker.mailbox.block_timeout == seconds
    assert (config.ask_timeout, config.start_timeout) == (seconds, seconds)


def test_a_system_agents_config_durations_take_units_too():
    text = (
        "version: 1\nroot:\n  name: root\n  children:\n"
        "    - name: watchdog\n      agent: vibe_actors.agents.watchdog:Watchdog\n"
        "      config:\n        interval: 500ms\n        deadline: 2\n"
        "        agents: {slow: {deadline: 1m}}\n"
    )
    config = phoenix.load_text(text).configs["watchdog"]
    assert (config.interval, config.deadline, config.agents["slow"].deadline) == (0.5, 2.0, 60.0)


def test_the_shipped_wiring_writes_durations_with_units_and_keeps_their_values(tmp_path):
    text = (ROOT / "wiring.yaml").read_text()
    assert "shutdown: 10s" in text and "shutdown: 10000" not in text
    root, config = phoenix.build(phoenix.load(ROOT / "wiring.yaml"))
    data = next(c for c in root.children if c.name == "data")
    assert [c.shutdown for c in data.children] == [10.0, 10.0, 5.0]
    assert (root.period, data.period, config.ask_timeout) == (60.0, 30.0, 5.0)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "      shutdown: 1.5\n",
            "wiring.yaml:7:17: $.root.children[0].shutdown: expected a duration >= 0 or"
            f" 'brutal_kill', got 1.5: {UNITS} whole milliseconds",
        ),
        (
            "      shutdown: 10 parsecs\n",
            "wiring.yaml:7:17: $.root.children[0].shutdown: expected a duration >= 0 or"
            f" 'brutal_kill', got '10 parsecs': {UNITS} whole milliseconds",
        ),
        (
            "      mailbox: {block_timeout: soon}\n",
            "wiring.yaml:7:32: $.root.children[0].mailbox.block_timeout: expected a duration,"
            f" got 'soon': {UNITS} seconds",
        ),
        (
            "      mailbox: {block_timeout: 1m30s}\n",
            "wiring.yaml:7:32: $.root.children[0].mailbox.block_timeout: expected a duration,"
            f" got '1m30s': {UNITS} seconds",
        ),
    ],
)
def test_a_bad_duration_says_which_units_and_what_a_plain_number_means(line, expected):
    text = f"version: 1\nroot:\n  name: root\n  children:\n    - name: a\n      agent: {WORKER}\n"
    assert problems_of(text + line) == [expected]


def test_a_bad_period_says_seconds_and_a_secret_stays_masked():
    text = (
        "version: 1\nroot:\n  name: root\n  period: 0s\n  shutdown: ${GRACE}\n  children:\n"
        f"    - name: a\n      agent: {WORKER}\n"
    )
    assert problems_of(text, {"GRACE": "sk-secret"}) == [
        f"wiring.yaml:4:11: $.root.period: expected a duration > 0, got '0s': {UNITS} seconds",
        "wiring.yaml:5:13: $.root.shutdown: expected a duration >= 0 or 'brutal_kill',"
        f" got '***': {UNITS} whole milliseconds",
    ]


def test_a_duration_from_the_environment_takes_a_unit():
    text = f"version: 1\nroot:\n  name: root\n  children:\n    - name: a\n      agent: {WORKER}\n"
    loaded = phoenix.load_text(text + "      shutdown: ${GRACE}\n", environ={"GRACE": "3s"})
    assert phoenix.build(loaded)[0].children[0].shutdown == 3.0


def test_the_json_schema_lets_editors_accept_a_duration_with_a_unit():
    defs = phoenix.json_schema()["$defs"]
    shutdown = defs["WorkerNode"]["properties"]["shutdown"]
    assert {"enum": ["brutal_kill"]} in shutdown["anyOf"] and shutdown["default"] == 5000
    pattern = next(c["pattern"] for c in shutdown["anyOf"] if c.get("type") == "string")
    assert all(re.match(pattern, text) for text in ("10s", "250ms", "1m", "1.5h"))
    assert not re.match(pattern, "10 parsecs")
    for name, field in [("SupervisorNode", "period"), ("MailboxSpec", "block_timeout")]:
        assert {"type": "string", "pattern": pattern} in defs[name]["properties"][field]["anyOf"]
    assert "milliseconds for `shutdown`" in defs["WiringFile"]["description"].replace("``", "`")
