"""The console's server side: its files and headers, and the API views it reads
(``/v1/events``, ``/v1/dead-letters``, ``/v1/system``), which scripts may read too.

The console in a real browser: tests/gateway/test_console_browser.py.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from importlib import resources

import pytest

from gateway import create_app
from gateway._admission import is_stream_path
from gateway._settings_cli import parse_settings
from vibe_actors import (
    AgentAbandoned,
    AgentRestarted,
    CircuitOpened,
    SupervisorGaveUp,
    SupervisorSpec,
    WorkerSpec,
)
from vibe_actors.agents.introspect import Introspect
from vibe_actors.agents.policy import Policy, PolicyConfig, Rule
from vibe_actors.agents.watchdog.protocol import AgentDeclaredHung

from tests.conftest import wait_until, worker
from tests.gateway.conftest import serve
from tests.gateway.test_mount import starlette_app
from tests.gateway.test_sse import iter_events, read_events, subscribed
from tests.vibe_actors.agents import Add

CONSOLE = resources.files("gateway").joinpath("console")
FILES = sorted(entry.name for entry in CONSOLE.iterdir() if entry.is_file())


def tree() -> SupervisorSpec:
    return SupervisorSpec(
        name="root",
        intensity=10,
        children=(worker("w"), WorkerSpec(name="introspect", agent=Introspect)),
    )


# -- the files --------------------------------------------------------------------------------


def test_the_console_is_served_with_a_strict_content_security_policy(gateway):
    _, client = gateway(tree())
    response = client.get("/ui/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval', no CDN
    assert csp["connect-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "<title>vibe-actors console</title>" in response.text


@pytest.mark.parametrize("name", FILES)
def test_every_file_of_the_package_is_served_with_its_type_and_headers(gateway, name):
    _, client = gateway(tree())
    response = client.get(f"/ui/{name}")
    assert response.status_code == 200
    assert response.content == CONSOLE.joinpath(name).read_bytes()
    kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[name.rsplit(".")[1]]
    assert response.headers["content-type"] == f"{kind}; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_ui_redirects_to_the_page_and_unknown_files_are_404(gateway):
    _, client = gateway(tree())
    response = client.get("/ui")
    assert response.status_code == 308 and response.headers["location"] == "/ui/"
    for path in ("/ui/nope.js", "/ui/..%2F_app.py", "/ui/_app.py"):
        missing = client.get(path)
        assert missing.status_code == 404, path
        assert missing.headers["content-type"] == "application/problem+json"


def test_under_a_mount_the_redirect_keeps_the_prefix(make_system, tmp_path):
    system = make_system(tree(), data_dir=str(tmp_path))
    app = create_app(system)
    with serve(starlette_app(app), on_shutdown=app.close_streams) as client:
        response = client.get("/actors/ui")
        assert response.status_code == 308 and response.headers["location"] == "/actors/ui/"
        assert client.get("/actors/ui/").status_code == 200
        assert client.get("/actors/ui/console.js").status_code == 200


def test_the_console_can_be_turned_off_and_leaves_the_document(gateway):
    _, client = gateway(tree(), ui=False)
    assert client.get("/ui/").status_code == 404
    assert client.get("/ui/console.js").status_code == 404
    paths = client.get("/v1/openapi.json").json()["paths"]
    assert "/ui/{file}" not in paths and "/ui" not in paths
    assert "/v1/events" in paths  # the API the console reads stays: scripts read it too


def test_the_console_flags_and_variable():
    assert parse_settings([], {}).ui is True
    assert parse_settings(["--no-ui"], {}).ui is False
    assert parse_settings([], {"VIBE_UI": "0"}).app_settings().ui is False
    assert parse_settings(["--ui"], {"VIBE_UI": "0"}).ui is True


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self.inline = ""
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline += data.strip()


def test_the_page_has_no_inline_script_and_nothing_loads_from_elsewhere():
    page = CONSOLE.joinpath("index.html").read_text()
    parser = _Scripts()
    parser.feed(page)
    assert parser.scripts == [{"type": "module", "src": "./console.js"}]
    assert not parser.inline and not parser.handlers and "style=" not in page
    for name in FILES:
        text = CONSOLE.joinpath(name).read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), name


@pytest.mark.parametrize("name", [n for n in FILES if n.endswith(".js")])
def test_no_script_inserts_text_as_html(name):
    """What an agent or a message names is text: it never reaches an HTML parser."""
    text = CONSOLE.joinpath(name).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in text, (name, sink)
    assert "new Function" not in text


# -- /v1/events -------------------------------------------------------------------------------


def test_a_crash_and_its_restart_stream_as_runtime_events(gateway):
    system, client = gateway(tree())
    assert is_stream_path("/v1/events") and is_stream_path("/v1/events/")
    with client.stream("GET", "/v1/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        lines = response.iter_lines()
        subscribed(lines)
        system.inject_fault("w", "crash")
        crashed, restarted = read_events(lines, 2)
    assert crashed["event"] == "AgentCrashedEvent" and restarted["event"] == "AgentRestarted"
    assert int(restarted["id"]) == int(crashed["id"]) + 1
    data = json.loads(restarted["data"])
    assert data["type"] == "AgentRestarted" and data["agent"] == "w" and data["at"] > 0
    assert data["incarnation"] == 2 and data["supervisor"] == "root"


def test_a_dead_letter_streams_and_is_listed_with_its_count(gateway):
    system, client = gateway(tree())
    assert client.get("/v1/dead-letters").json()["total"] == 0
    with client.stream("GET", "/v1/events") as response:
        lines = response.iter_lines()
        subscribed(lines)
        system.tell("nobody", Add(n=1))
        (event,) = read_events(lines, 1)
    assert event["event"] == "DeadLettered"
    assert json.loads(event["data"])["reason"] == "unknown_agent"
    report = client.get("/v1/dead-letters").json()
    assert report["total"] == 1 and report["counts"]["unknown_agent"] == 1
    (letter,) = report["recent"]
    assert letter["recipient"] == "nobody" and letter["message_type"] == "Add"
    assert "message" not in letter  # its contents are not shown


def test_a_client_resuming_with_last_event_id_gets_what_it_missed(gateway):
    system, client = gateway(tree())
    system.inject_fault("w", "crash")
    wait_until(lambda: client.app.runtime_events.last_id >= 2, what="two events")
    with client.stream("GET", "/v1/events", headers={"last-event-id": "1"}) as response:
        lines = response.iter_lines()
        subscribed(lines)
        (replayed,) = read_events(lines, 1)
    assert replayed["id"] == "2" and replayed["event"] == "AgentRestarted"
    with client.stream("GET", "/v1/events", headers={"last-event-id": "99"}) as response:
        lines = response.iter_lines()
        subscribed(lines)
        system.inject_fault("w", "crash")
        gap, crashed = read_events(lines, 2)
    assert gap["event"] == "gap" and json.loads(gap["data"]) == {
        "last_event_id": 99,
        "resumed_from": 2,
    }
    assert crashed["id"] == "3"


def test_history_kept_short_says_what_it_lost(gateway):
    system, client = gateway(tree(), stream_history=1)
    for _ in range(2):
        system.inject_fault("w", "crash")
    wait_until(lambda: client.app.runtime_events.last_id >= 4, what="four events")
    with client.stream("GET", "/v1/events", headers={"last-event-id": "1"}) as response:
        lines = response.iter_lines()
        subscribed(lines)
        gap, kept = read_events(lines, 2)
    assert gap["event"] == "gap" and json.loads(gap["data"])["resumed_from"] == 3
    assert kept["id"] == "4"


def test_a_malformed_last_event_id_is_a_400_and_too_many_streams_a_503(gateway):
    _, client = gateway(tree(), max_streams=1)
    assert client.get("/v1/events", headers={"last-event-id": "x"}).status_code == 400
    with client.stream("GET", "/v1/events") as response:
        lines = response.iter_lines()  # kept: a closed line iterator closes the stream
        subscribed(lines)
        refused = client.get("/v1/events")
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"


def test_a_slow_client_is_told_how_many_events_it_lost(gateway):
    system, client = gateway(tree(), stream_buffer=1)
    with client.stream("GET", "/v1/events") as response:
        lines = response.iter_lines()
        subscribed(lines)
        for _ in range(20):
            system.tell("nobody", Add(n=1))
        wait_until(lambda: client.app.runtime_events.dropped > 0, what="a drop")
        system.inject_fault("w", "crash")
        seen, dropped = 0, 0
        for event in iter_events(lines):
            if event["event"] == "dropped":
                dropped += json.loads(event["data"])["dropped"]
            else:
                seen += 1
            if seen + dropped >= 22:  # 20 dead letters, the crash and the restart
                break
    assert dropped > 0 and seen + dropped == 22


def test_the_drain_ends_open_event_streams(gateway):
    _, client = gateway(tree())
    with client.stream("GET", "/v1/events") as response:
        lines = response.iter_lines()
        subscribed(lines)
        client.app.close_streams()
        assert list(iter_events(lines)) == []
    assert client.get("/v1/events").status_code == 503


# -- /v1/system -------------------------------------------------------------------------------


def test_the_system_view_shows_uptime_store_reloads_and_escalations(gateway, tmp_path):
    system, client = gateway(tree(), {"data_dir": str(tmp_path)}, chaos=True)
    view = client.get("/v1/system").json()
    assert view["running"] is True and view["failure"] is None
    assert view["uptime_seconds"] >= 0 and view["started_at"] > 0
    assert view["store"] == {"backend": "sqlite", "location": "sqlite", "data_dir": str(tmp_path)}
    assert view["chaos"] is True and view["auth"] is False
    assert view["reloads"] == [] and view["escalations"] == []
    grown = SupervisorSpec(name="root", intensity=10, children=(*tree().children, worker("w2")))
    system.apply(grown)
    (reload,) = client.get("/v1/system").json()["reloads"]
    assert reload["added"] == ["w2"] and reload["failed"] == []
    assert reload["outcome"] == "applied"
    assert view["started_at"] == system.started_at  # the system's start, not the app's


def test_a_rejected_reload_is_in_the_history_with_its_problems(gateway, tmp_path):
    from gateway._main import reload_wiring
    from vibe_actors import ReloadRejected

    system, client = gateway(tree())
    seen: list[ReloadRejected] = []
    system.events.subscribe(lambda e: isinstance(e, ReloadRejected) and seen.append(e))
    broken = tmp_path / "wiring.yaml"
    broken.write_text("version: 1\nroot: [\n")
    reload_wiring(system, str(broken), client.app)
    (reload,) = client.get("/v1/system").json()["reloads"]
    assert reload["outcome"] == "rejected" and reload["added"] == []
    assert reload["problems"] and str(broken) in reload["problems"][0]
    (event,) = seen
    assert list(event.problems) == reload["problems"]


def test_escalations_show_with_a_hung_agents_stack(gateway):
    system, client = gateway(tree())
    system.events.publish(SupervisorGaveUp(supervisor="data", reason="too many restarts"))
    system.events.publish(AgentAbandoned(agent="w", reason="did not stop in 5s"))
    system.events.publish(
        CircuitOpened(agent="w", message_type="Add", crashes=3, seconds=2.0, by="gateway")
    )
    system.events.publish(
        AgentDeclaredHung(
            agent="w", incarnation=1, reason="no heartbeat", stack='File "x.py"', replaced=True
        )
    )
    system.events.publish(AgentRestarted(agent="w", incarnation=2, supervisor="root"))  # none
    escalations = client.get("/v1/system").json()["escalations"]
    assert [(e["kind"], e["agent"]) for e in escalations] == [
        ("SupervisorGaveUp", "data"),
        ("AgentAbandoned", "w"),
        ("CircuitOpened", "w"),
        ("AgentDeclaredHung", "w"),
    ]
    assert escalations[2]["reason"] == "Add crashed 3 times: refused 2.0s"
    assert escalations[3]["stack"] == 'File "x.py"' and escalations[0]["stack"] is None
    assert all(e["at"] > 0 for e in escalations)


def test_with_tokens_the_console_api_asks_for_one_and_policy_applies(gateway):
    rules = [Rule(principal="alice"), Rule(principal="bob", agent="w")]
    policy = WorkerSpec(name="policy", agent=Policy, config=PolicyConfig(enabled=True, rules=rules))
    root = SupervisorSpec(name="root", children=(policy, *tree().children))
    _, client = gateway(root, tokens={"alice": "a-token", "bob": "b-token"})
    assert client.get("/ui/").status_code == 200  # the files hold no data
    for path in ("/v1/events", "/v1/dead-letters", "/v1/system"):
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == 'Bearer realm="vibe"'
        bob = client.get(path, headers={"authorization": "Bearer b-token"})
        assert bob.status_code == 403, path
    alice = {"authorization": "Bearer a-token"}
    assert client.get("/v1/system", headers=alice).json()["auth"] is True
    with client.stream("GET", "/v1/events", headers=alice) as response:
        assert response.status_code == 200


def test_the_system_view_names_a_postgresql_store_without_its_password():
    from gateway._console import _store_info
    from vibe_actors import ActorSystem, SystemConfig

    config = SystemConfig(store="postgresql://vibe:s3cret@db.example:5432/vibe")
    info = _store_info(ActorSystem([], config))  # not started: only its settings are read
    assert info.backend == "postgresql" and "s3cret" not in info.location
    assert "db.example" in info.location
