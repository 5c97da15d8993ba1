"""Policy (403) and quota (429) on the request path, with the real agents."""

from __future__ import annotations

from vibe_actors import SupervisorSpec, WorkerSpec
from vibe_actors.agents.policy import Policy, PolicyConfig, Reload, Rule, Snapshot
from vibe_actors.agents.quota import Limit, Quota, QuotaConfig
from vibe_actors.agents.scheduler import Scheduler

from tests.conftest import wait_until, worker
from tests.postgres import agent_sql
from tests.vibe_actors.agents import GetTotal

ALICE = {"authorization": "Bearer alice-token"}
BOB = {"authorization": "Bearer bob-token"}


def tree(policy=None, quota=None):
    children = [worker("w")]
    if policy is not None:
        children.append(WorkerSpec(name="policy", agent=Policy, config=policy))
    if quota is not None:
        children.append(WorkerSpec(name="quota", agent=Quota, config=quota))
    return SupervisorSpec(name="root", children=tuple(children))


def test_policy_allows_and_denies_per_principal_and_message(gateway, tmp_path):
    policy = PolicyConfig(enabled=True, rules=[Rule(principal="alice", agent="w", message="Add")])
    system, client = gateway(
        tree(policy=policy),
        system_config={"data_dir": str(tmp_path)},
        tokens={"alice": "alice-token", "bob": "bob-token"},
    )
    wait_until(lambda: client.app.guards.policy is not None, what="the policy snapshot")
    assert client.post("/v1/agents/w/Add", json={"n": 1}, headers=ALICE).status_code == 200
    denied = client.post("/v1/agents/w/Echo", json={"text": "x"}, headers=ALICE)
    assert denied.status_code == 403
    assert denied.json()["type"] == "/problems/forbidden"
    assert client.post("/v1/agents/w/Add", json={"n": 1}, headers=BOB).status_code == 403
    # A runtime policy change reaches the gateway's snapshot without a restart.
    rules = [Rule(principal="bob", agent="*", message="*")]
    system.ask("policy", Reload(rules=rules, roles={}))
    wait_until(lambda: client.app.guards.policy.version == 2, what="the new snapshot")
    assert client.post("/v1/agents/w/Echo", json={"text": "x"}, headers=BOB).status_code == 200
    assert client.post("/v1/agents/w/Add", json={"n": 1}, headers=ALICE).status_code == 403


def test_quota_exceeded_is_429_with_retry_after(gateway, tmp_path, store):
    quota = QuotaConfig(limits=[Limit(agent="w", rate=0.01, burst=2)])
    _, client = gateway(
        tree(quota=quota), system_config={"data_dir": str(tmp_path), "store": store}
    )
    assert (client.app.guards.quota_agent is not None) == bool(store)  # shared: ask the agent
    codes = [client.post("/v1/agents/w/Ping", json={}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = client.post("/v1/agents/w/Ping", json={})
    assert refused.headers["retry-after"].isdigit() and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["type"] == "/problems/quota-exceeded"


def test_a_limit_that_admits_no_request_refuses_it_instead_of_letting_it_through(
    gateway, tmp_path, store
):
    quota = QuotaConfig(limits=[Limit(agent="w", rate=10, burst=0.5)])  # below a request's 1
    _, client = gateway(
        tree(quota=quota), system_config={"data_dir": str(tmp_path), "store": store}
    )
    refused = client.post("/v1/agents/w/Ping", json={})
    assert refused.status_code == 429 and "retry-after" not in refused.headers
    assert "admits no request" in refused.json()["detail"]
    assert client.post("/v1/agents/quota/Ping", json={}).status_code == 200  # not limited


def test_two_gateways_on_one_database_share_the_quota(gateway, tmp_path, postgres_url):
    quota = QuotaConfig(limits=[Limit(principal="*", rate=0.01, burst=3)])
    clients = [
        gateway(
            tree(quota=quota),
            system_config={"data_dir": str(tmp_path / name), "store": postgres_url},
            tokens={"alice": "alice-token", "bob": "bob-token"},
        )[1]
        for name in ("a", "b")
    ]
    codes = [clients[i % 2].post("/v1/agents/w/Ping", json={}, headers=ALICE) for i in range(4)]
    assert [c.status_code for c in codes] == [200, 200, 200, 429]  # 3 in all, not 3 each
    assert int(codes[-1].headers["retry-after"]) >= 1
    assert clients[1].post("/v1/agents/w/Ping", json={}, headers=BOB).status_code == 200


def test_a_quota_agent_that_cannot_decide_is_503(gateway, tmp_path, postgres_url):
    quota = QuotaConfig(limits=[Limit(agent="w", rate=0.01, burst=2)])
    system, client = gateway(
        tree(quota=quota), system_config={"data_dir": str(tmp_path), "store": postgres_url}
    )
    agent_sql(tmp_path, postgres_url, "quota", "ALTER FUNCTION acquire RENAME TO gone")
    refused = client.post("/v1/agents/w/Ping", json={})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["type"] == "/problems/quota-unavailable"
    assert "quota" in refused.json()["detail"]


def test_a_caller_cannot_make_the_scheduler_send_what_it_may_not_send(gateway, tmp_path):
    # mallory may use the scheduler, and nothing else: not policy/Reload, not w/Add.
    policy = PolicyConfig(
        enabled=True, rules=[Rule(principal="mallory", agent="scheduler", message="*")]
    )
    children = (
        WorkerSpec(name="policy", agent=Policy, config=policy),
        worker("w"),
        WorkerSpec(name="scheduler", agent=Scheduler),
    )
    system, client = gateway(
        SupervisorSpec(name="root", children=children),
        system_config={"data_dir": str(tmp_path)},
        tokens={"mallory": "mallory-token"},
    )
    wait_until(lambda: client.app.guards.policy is not None, what="the policy snapshot")
    mallory = {"authorization": "Bearer mallory-token"}
    assert client.post("/v1/agents/w/Add", json={"n": 1}, headers=mallory).status_code == 403
    for target, message in (
        ("policy", {"type": "Reload", "rules": [], "enabled": False}),
        ("w", {"type": "Add", "n": 1}),
    ):
        body = {"name": f"via-{target}", "target": target, "message": message, "at": 0}
        refused = client.post("/v1/agents/scheduler/Schedule", json=body, headers=mallory)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert message["type"] in refused.json()["detail"]
    assert client.post("/v1/agents/scheduler/List", json={}, headers=mallory).json()["items"] == []
    assert system.ask("policy", Snapshot()).enabled is True
    assert system.ask("w", GetTotal()).total == 0


def test_views_and_chaos_are_authorised_like_any_route(gateway, tmp_path):
    # alice may send Add to w, nothing else; root may do anything.
    rules = [
        Rule(principal="alice", agent="w", message="Add"),
        Rule(principal="root", agent="*", message="*"),
    ]
    _, client = gateway(
        tree(policy=PolicyConfig(enabled=True, rules=rules)),
        system_config={"data_dir": str(tmp_path)},
        tokens={"alice": "alice-token", "root": "root-token"},
        chaos=True,
    )
    wait_until(lambda: client.app.guards.policy is not None, what="the policy snapshot")
    admin = {"authorization": "Bearer root-token"}
    for path in ("/v1/agents", "/v1/agents/w", "/v1/tree"):
        assert client.get(path, headers=ALICE).status_code == 403, path
        assert client.get(path, headers=admin).status_code == 200, path
    assert client.post("/v1/chaos/w/crash", headers=ALICE).status_code == 403
    assert client.post("/v1/chaos/w/hang?seconds=0.01", headers=ALICE).status_code == 403
    assert client.post("/v1/agents/w/Add", json={"n": 1}, headers=ALICE).status_code == 200


def test_chaos_refuses_supervisors_and_unbounded_hangs(gateway):
    _, client = gateway(tree(), chaos=True)
    refused = client.post("/v1/chaos/root/crash")
    assert refused.status_code == 403 and refused.json()["type"] == "/problems/chaos-refused"
    for seconds in ("inf", "nan", "-1", "0", "1e9", "9" * 5000, "%ff"):
        bad = client.post(f"/v1/chaos/w/hang?seconds={seconds}")
        assert bad.status_code == 400, (seconds, bad.text)
        assert bad.json()["type"] == "/problems/bad-seconds"
    assert client.post("/v1/chaos/w/hang?seconds=0.01").status_code == 202
    assert client.post("/v1/chaos/nobody/crash").status_code == 404
