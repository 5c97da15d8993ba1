"""Audit: runtime events reach the trail, dead letters are aggregated, tampering is reported."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from vibe_actors import AskError, RuntimeEvent, WorkerSpec
from vibe_actors.agents.audit import (
    Audit,
    AuditChainBroken,
    AuditConfig,
    AuditRecords,
    AuditUnavailable,
    AuditVerified,
    Recent,
    VerifyNow,
)
from vibe_actors.agents.ledger import Ledger
from vibe_actors.agents.policy import Check, Policy, PolicyConfig
from vibe_actors.store._sqlite import database_path

from tests.conftest import wait_until


def tree(**audit_config) -> list[WorkerSpec]:
    return [
        WorkerSpec(name="ledger", agent=Ledger),
        WorkerSpec(
            name="audit",
            agent=Audit,
            config=AuditConfig(**audit_config),
            depends_on=("ledger",),
        ),
        WorkerSpec(name="policy", agent=Policy, config=PolicyConfig(enabled=True, persist=False)),
    ]


def recent(system, limit: int = 100) -> list[dict]:
    reply = system.ref("audit").ask(Recent(limit=limit))
    assert isinstance(reply, AuditRecords)
    return [record.data for record in reply.records]


def wait_for_record(system, predicate, what: str) -> list[dict]:
    found: list[dict] = []

    def check() -> bool:
        found[:] = recent(system)
        return any(predicate(data) for data in found)

    wait_until(check, timeout=10.0, what=what)
    return found


def gauge(system, name: str, labels: dict | None = None) -> float | None:
    return system.registry.get_sample_value(name, labels or {})


def test_a_crash_and_its_restart_are_in_the_trail(make_system, tmp_path):
    system = make_system(tree(), data_dir=str(tmp_path))
    system.inject_fault("policy", "crash")
    wait_until(
        lambda: system.cell("policy").incarnation == 2 and system.status("policy") == "running",
        what="the policy agent's restart",
    )
    records = wait_for_record(
        system,
        lambda d: d["type"] == "AgentRestarted" and d["agent"] == "policy",
        "the restart in the trail",
    )
    crash = next(d for d in records if d["type"] == "AgentCrashedEvent")
    assert (crash["agent"], crash["incarnation"]) == ("policy", 1)
    assert "injected crash" in crash["error"]
    restart = next(d for d in records if d["type"] == "AgentRestarted")
    assert (restart["incarnation"], restart["supervisor"]) == (2, "root")
    assert records.index(crash) < records.index(restart)
    assert records[0] == {
        "type": "AuditStarted", "agent": "audit", "incarnation": 1, "at": records[0]["at"],
    }  # fmt: skip
    assert [d["cause"] for d in records if d["type"] == "PolicyChanged"] == ["start", "start"]


def test_policy_denials_are_aggregated_per_principal_agent_message_and_rule(make_system, tmp_path):
    system = make_system(tree(dead_letter_flush=0.05), data_dir=str(tmp_path))
    for _ in range(3):
        decision = system.ref("policy").ask(Check(agent="kv", message="Put", principal="mallory"))
        assert not decision.allowed
    system.ref("policy").ask(Check(agent="kv", message="Get", principal="eve"))
    counts: dict[tuple, int] = {}

    def all_four_counted() -> bool:
        counts.clear()
        for summary in (d for d in recent(system) if d["type"] == "PolicyDenials"):
            for c in summary["counts"]:
                key = (c["principal"], c["agent"], c["message"], c["rule"])
                counts[key] = counts.get(key, 0) + c["count"]
                assert c["reason"].startswith(repr(c["principal"]))
        return sum(counts.values()) == 4

    wait_until(all_four_counted, timeout=10.0, what="all four denials counted")
    assert counts == {("mallory", "kv", "Put", None): 3, ("eve", "kv", "Get", None): 1}
    assert not any(d["type"] == "PolicyDenied" for d in recent(system))  # none one by one


def test_dead_letters_are_aggregated_and_the_trails_own_are_not_counted(make_system, tmp_path):
    system = make_system(tree(dead_letter_flush=0.05), data_dir=str(tmp_path))
    for _ in range(5):
        system.tell("nobody", VerifyNow())  # unknown agent
    system.tell("ledger", VerifyNow())  # unhandled by the ledger: its own plumbing, not counted
    system.tell("audit", Check(agent="x", message="y"))  # unhandled by audit: not counted
    records = wait_for_record(
        system, lambda d: d["type"] == "DeadLetters", "the dead-letter summary"
    )
    summaries = [d for d in records if d["type"] == "DeadLetters"]
    counts = [entry for summary in summaries for entry in summary["counts"]]
    assert counts == [{"agent": "nobody", "reason": "unknown_agent", "count": 5}]
    assert summaries[0]["since"] <= summaries[0]["until"]


def test_the_audit_agents_own_restart_is_recorded(make_system, tmp_path):
    system = make_system(tree(), data_dir=str(tmp_path))
    system.inject_fault("audit", "crash")
    records = wait_for_record(
        system,
        lambda d: d["type"] == "AgentRestarted" and d["agent"] == "audit",
        "the audit agent's restart",
    )
    starts = [d["incarnation"] for d in records if d["type"] == "AuditStarted"]
    assert starts == [1, 2]
    assert any(d["type"] == "AgentCrashedEvent" and d["agent"] == "audit" for d in records)


def test_a_tampered_trail_is_reported(make_system, tmp_path):
    system = make_system(tree(), data_dir=str(tmp_path))
    broken: list[AuditChainBroken] = []
    seen = threading.Event()

    def on_event(event: RuntimeEvent) -> None:
        if isinstance(event, AuditChainBroken):
            broken.append(event)
            seen.set()

    system.events.subscribe(on_event)
    system.inject_fault("policy", "crash")
    wait_for_record(system, lambda d: d["type"] == "AgentRestarted", "the restart in the trail")
    audit = system.ref("audit")
    verdict = audit.ask(VerifyNow())
    assert verdict.ok and verdict.count >= 3
    assert gauge(system, "vibe_audit_chain_ok") == 1

    db = sqlite3.connect(database_path(tmp_path, "ledger"), isolation_level=None)
    db.execute(
        "UPDATE records SET data = ? WHERE stream = 'audit' AND seq = 2",
        (b"\x81\xa4type\xa8Harmless",),
    )
    db.close()
    assert audit.ask(VerifyNow()) == AuditVerified(ok=False, count=1, broken_at=2)
    assert seen.wait(5.0)
    assert (broken[0].ledger, broken[0].stream, broken[0].broken_at) == ("ledger", "audit", 2)
    assert gauge(system, "vibe_audit_chain_ok") == 0


def test_an_unusable_ledger_is_counted_and_recent_answers_503(make_system, tmp_path):
    database_path(tmp_path, "ledger").write_bytes(b"garbage" * 1000)
    system = make_system(tree(), data_dir=str(tmp_path))
    with pytest.raises(AskError) as raised:
        system.ref("audit").ask(Recent(limit=5))
    assert isinstance(raised.value.reply, AuditUnavailable)
    assert raised.value.reply.http_status == 503
    failed_appends = {"op": "append"}
    wait_until(
        lambda: (gauge(system, "vibe_audit_ledger_failures_total", failed_appends) or 0) >= 1,
        what="the failed append counted",
    )
    with pytest.raises(AskError) as raised:
        system.ref("audit").ask(VerifyNow())
    assert isinstance(raised.value.reply, AuditUnavailable)
