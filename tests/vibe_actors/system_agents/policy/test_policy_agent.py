"""Policy: the pure decision (examples and properties), the snapshot, the agent, restarts."""

from __future__ import annotations

import threading

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_actors import AskError, Ping, RuntimeEvent, StartFailed, WorkerSpec
from vibe_actors.agents.policy import (
    WILDCARD,
    Check,
    Decision,
    Policy,
    PolicyChanged,
    PolicyConfig,
    PolicyDenied,
    PolicyNotSaved,
    PolicyReloaded,
    PolicySnapshot,
    Reload,
    Rule,
    Snapshot,
    decide,
)

ROLES = {"alice": ["admin"], "bob": ["ops"]}


def allow(**kw) -> Rule:
    return Rule(effect="allow", **kw)


def deny(**kw) -> Rule:
    return Rule(effect="deny", **kw)


# -- examples -----------------------------------------------------------------------


def test_empty_rules_deny_everything_by_default():
    decision = decide([], ROLES, "alice", "kv", "Get")
    assert decision == Decision(
        allowed=False, rule=None, reason="'alice' may not send Get to kv: no rule allows it"
    )


def test_explicit_deny_wins_over_an_earlier_allow():
    rules = [allow(agent="kv"), deny(agent="kv", message="Delete", principal="bob")]
    assert decide(rules, ROLES, "bob", "kv", "Get") == Decision(
        allowed=True, rule=0, reason="allowed by rule 0"
    )
    denied = decide(rules, ROLES, "bob", "kv", "Delete")
    assert (denied.allowed, denied.rule) == (False, 1)
    assert decide(rules, ROLES, "alice", "kv", "Delete").allowed


def test_roles_and_principal_patterns():
    rules = [allow(role="admin"), allow(principal=WILDCARD, message="Ping")]
    assert decide(rules, ROLES, "alice", "anything", "Put").allowed  # admin
    assert not decide(rules, ROLES, "bob", "kv", "Put").allowed  # ops is not admin
    assert decide(rules, ROLES, "bob", "kv", "Ping").allowed  # any named principal
    assert not decide(rules, ROLES, None, "kv", "Ping").allowed  # '*' excludes anonymous
    assert decide([allow(message="Ping")], ROLES, None, "kv", "Ping").allowed  # None: anyone


def test_rules_validate_their_fields():
    with pytest.raises(ValueError, match="non-empty"):
        Rule(agent="")
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"agent": "kv", "effect": "maybe"}', type=Rule)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"agent": "kv", "colour": "red"}', type=Rule)


def test_snapshot_is_immutable_and_allows_everything_when_disabled():
    snapshot = PolicySnapshot([deny()], ROLES, enabled=False, version=3)
    assert snapshot.decide("bob", "kv", "Get") == Decision(
        allowed=True, rule=None, reason="policy disabled"
    )
    with pytest.raises(AttributeError):
        snapshot.version = 4
    with pytest.raises(TypeError):
        snapshot.roles["eve"] = ("admin",)  # type: ignore[index]
    again = PolicySnapshot.from_reply(snapshot.to_reply())
    assert (again.version, again.enabled, again.rules, dict(again.roles)) == (
        3,
        False,
        snapshot.rules,
        dict(snapshot.roles),
    )


def test_snapshot_decides_from_many_threads():
    snapshot = PolicySnapshot([allow(role="admin"), deny(agent="secret")], ROLES, enabled=True)
    results: list[bool] = []
    lock = threading.Lock()

    def run() -> None:
        mine = [snapshot.decide("alice", "kv", "Get").allowed for _ in range(500)]
        mine += [not snapshot.decide("alice", "secret", "Get").allowed for _ in range(500)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 4000 and all(results)


# -- properties -----------------------------------------------------------------------

AGENTS = ["kv", "queue"]
MESSAGES = ["Get", "Put"]
PRINCIPALS = [None, "alice", "bob", "carol"]

names = st.sampled_from([*AGENTS, WILDCARD])
messages = st.sampled_from([*MESSAGES, WILDCARD])
rules_st = st.lists(
    st.builds(
        Rule,
        agent=names,
        message=messages,
        effect=st.sampled_from(["allow", "deny"]),
        principal=st.sampled_from([*PRINCIPALS, WILDCARD]),
        role=st.sampled_from([None, "admin", "ops"]),
    ),
    max_size=8,
)
roles_st = st.dictionaries(
    st.sampled_from(["alice", "bob", "carol"]),
    st.lists(st.sampled_from(["admin", "ops"]), max_size=2),
)
request_st = st.tuples(
    st.sampled_from(PRINCIPALS), st.sampled_from(AGENTS), st.sampled_from(MESSAGES)
)


def _matching(rules, roles, principal, agent, message):
    held = frozenset(roles.get(principal, ())) if principal is not None else frozenset()
    return [i for i, r in enumerate(rules) if r.matches(principal, held, agent, message)]


@settings(max_examples=300, deadline=None)
@given(rules_st, roles_st, request_st)
def test_property_deny_wins_and_default_deny(rules, roles, request):
    principal, agent, message = request
    decision = decide(rules, roles, principal, agent, message)
    matching = _matching(rules, roles, principal, agent, message)
    denies = [i for i in matching if rules[i].effect == "deny"]
    allows = [i for i in matching if rules[i].effect == "allow"]
    if denies:
        assert decision.allowed is False and decision.rule == denies[0]
    elif allows:
        assert decision.allowed is True and decision.rule == allows[0]
    else:
        assert decision.allowed is False and decision.rule is None


@settings(max_examples=300, deadline=None)
@given(rules_st, roles_st, request_st)
def test_property_wildcards_mean_any_value(rules, roles, request):
    principal, agent, message = request

    def concrete(rule: Rule) -> Rule:
        return msgspec.structs.replace(
            rule,
            agent=agent if rule.agent == WILDCARD else rule.agent,
            message=message if rule.message == WILDCARD else rule.message,
            principal=principal
            if rule.principal == WILDCARD and principal is not None
            else rule.principal,
        )

    expected = decide([concrete(r) for r in rules], roles, principal, agent, message)
    assert decide(rules, roles, principal, agent, message) == expected


@settings(max_examples=200, deadline=None)
@given(rules_st, roles_st, request_st)
def test_property_adding_a_deny_never_allows_more(rules, roles, request):
    principal, agent, message = request
    before = decide(rules, roles, principal, agent, message)
    after = decide([*rules, deny(agent=agent)], roles, principal, agent, message)
    assert after.allowed is False
    snapshot = PolicySnapshot(rules, roles, enabled=True)
    assert snapshot.decide(principal, agent, message) == before


# -- the agent ------------------------------------------------------------------------


def spec(config: PolicyConfig | None) -> list[WorkerSpec]:
    return [WorkerSpec(name="policy", agent=Policy, config=config)]


def record_events(system) -> list[RuntimeEvent]:
    seen: list[RuntimeEvent] = []
    system.events.subscribe(seen.append)
    return seen


CONFIG = PolicyConfig(
    enabled=True, rules=[allow(role="admin"), allow(agent="kv", message="Get")], roles=ROLES
)


def test_default_config_is_disabled_and_allows(make_system, tmp_path):
    system = make_system(spec(None), data_dir=str(tmp_path))
    assert system.ask("policy", Check(principal=None, agent="kv", message="Put")).allowed
    reply = system.ask("policy", Snapshot())
    assert (reply.version, reply.enabled, reply.rules) == (1, False, [])


def test_check_decides_and_publishes_denials(make_system, tmp_path):
    system = make_system(spec(CONFIG), data_dir=str(tmp_path))
    seen = record_events(system)
    assert system.ask("policy", Check(principal="bob", agent="kv", message="Get")).allowed
    denied = system.ask("policy", Check(principal="bob", agent="kv", message="Put"))
    assert denied.allowed is False and denied.rule is None
    events = [e for e in seen if isinstance(e, PolicyDenied)]
    assert len(events) == 1
    assert (events[0].principal, events[0].agent, events[0].message) == ("bob", "kv", "Put")
    assert events[0].at > 0


def test_reload_bumps_version_publishes_and_snapshot_follows(make_system, tmp_path):
    system = make_system(spec(CONFIG), data_dir=str(tmp_path))
    seen = record_events(system)
    held = PolicySnapshot.from_reply(system.ask("policy", Snapshot()))
    assert held.version == 1 and held.decide("bob", "kv", "Get").allowed
    reply = system.ask("policy", Reload(rules=[deny(principal="bob")], roles=ROLES))
    assert reply == PolicyReloaded(version=2)
    changed = [e for e in seen if isinstance(e, PolicyChanged)]
    assert [(e.version, e.cause, e.enabled) for e in changed] == [(2, "reload", True)]
    fresh = PolicySnapshot.from_reply(system.ask("policy", Snapshot()))
    assert fresh.version == 2 and not fresh.decide("bob", "kv", "Get").allowed
    assert held.decide("bob", "kv", "Get").allowed  # an old snapshot does not change
    assert system.ask("policy", Reload(rules=[], enabled=False)).version == 3
    assert system.ask("policy", Check(principal="bob", agent="kv", message="Get")).allowed


def test_reload_survives_a_restart_when_persisted(make_system, tmp_path):
    system = make_system(spec(CONFIG), data_dir=str(tmp_path))
    system.ask("policy", Reload(rules=[allow(principal="carol")], roles={}))
    seen = record_events(system)
    system.inject_fault("policy", "crash")
    assert system.ask("policy", Ping()).incarnation == 2
    reply = system.ask("policy", Snapshot())
    assert (reply.version, reply.rules, reply.roles) == (2, [allow(principal="carol")], {})
    assert [(e.version, e.cause) for e in seen if isinstance(e, PolicyChanged)] == [(2, "start")]
    assert (tmp_path / "policy" / "policy.json").exists()


def test_changed_config_wins_over_an_older_reload(make_system, tmp_path):
    first = make_system(spec(CONFIG), data_dir=str(tmp_path))
    first.ask("policy", Reload(rules=[allow(principal="carol")], roles={}))
    first.shutdown()
    unchanged = make_system(spec(CONFIG), data_dir=str(tmp_path))
    assert unchanged.ask("policy", Snapshot()).rules == [allow(principal="carol")]
    unchanged.shutdown()
    changed = PolicyConfig(enabled=True, rules=[deny()], roles={})
    second = make_system(spec(changed), data_dir=str(tmp_path))
    reply = second.ask("policy", Snapshot())
    assert (reply.version, reply.rules) == (3, [deny()])


def test_without_persistence_a_restart_rebuilds_from_config(make_system, tmp_path):
    config = msgspec.structs.replace(CONFIG, persist=False)
    system = make_system(spec(config), data_dir=str(tmp_path))
    system.ask("policy", Reload(rules=[], enabled=False))
    assert system.ask("policy", Snapshot()).version == 2
    system.inject_fault("policy", "crash")
    assert system.ask("policy", Ping()).incarnation == 2
    reply = system.ask("policy", Snapshot())
    assert (reply.version, reply.enabled, reply.rules) == (1, True, CONFIG.rules)
    assert not (tmp_path / "policy").exists()


def test_reload_that_cannot_be_saved_changes_nothing(make_system, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    system = make_system(spec(CONFIG), data_dir=str(blocker))
    with pytest.raises(AskError) as caught:
        system.ask("policy", Reload(rules=[], enabled=False))
    assert isinstance(caught.value.reply, PolicyNotSaved)
    assert caught.value.reply.http_status == 503
    assert system.ask("policy", Snapshot()).version == 1
    assert not system.ask("policy", Check(principal="bob", agent="kv", message="Put")).allowed


def test_an_unreadable_policy_file_fails_the_start(make_system, tmp_path):
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "policy.json").write_text("{not json")
    with pytest.raises(StartFailed) as caught:
        make_system(spec(CONFIG), data_dir=str(tmp_path))
    assert isinstance(caught.value.__cause__, msgspec.DecodeError)


def test_config_may_be_a_plain_mapping(make_system, tmp_path):
    config = {"enabled": True, "rules": [{"agent": "kv", "message": "Get"}]}
    system = make_system(spec(config), data_dir=str(tmp_path))
    assert system.ask("policy", Check(agent="kv", message="Get")).allowed
    assert not system.ask("policy", Check(agent="kv", message="Put")).allowed
