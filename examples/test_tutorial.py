"""The tutorial (docs/tutorial.md), run as written.

The system is booted from ``examples/tutorial_wiring.yaml`` with phoenix, and
served by the real gateway (uvicorn on a free port, in a thread); every curl
line of ``examples/tutorial_curl.sh`` is sent to it, section by section, and
the replies are the ones the tutorial shows.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tutorial_agent import NoSuchOption, Results, Standings, Tallied, Vote

import phoenix
from gateway import AppSettings, GatewayServer, create_app, uvicorn_config
from vibe_actors import ActorSystem, AgentRestarted, AskError, Ping
from vibe_actors.testing import record_events

HERE = Path(__file__).parent
WIRING = HERE / "tutorial_wiring.yaml"
CURL = HERE / "tutorial_curl.sh"


def curl_sections() -> dict[str, list[list[str]]]:
    """Section name -> the argv of each curl line in it."""
    sections: dict[str, list[list[str]]] = {}
    current = ""
    for line in CURL.read_text().splitlines():
        if "--8<-- [start:" in line:
            current = line.split("[start:")[1].rstrip("]")
            sections[current] = []
        elif line.startswith("curl "):
            sections[current].append(shlex.split(line))
    return sections


def send(client: httpx.Client, argv: list[str]) -> httpx.Response:
    """Send what ``curl argv`` sends, to ``client``'s server instead of localhost:8000."""
    method, headers, body, url = "GET", {}, None, ""
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            key, _, value = next(args).partition(":")
            headers[key.strip()] = value.strip()
        elif arg == "-d":
            body = next(args)
            method = "POST" if method == "GET" else method
        elif arg in ("-s", "-i"):
            continue
        else:
            url = arg
    assert url.startswith("localhost:8000/"), url
    return client.request(method, url.removeprefix("localhost:8000"), headers=headers, content=body)


@pytest.fixture
def system(tmp_path: Path) -> Iterator[ActorSystem]:
    booted = phoenix.boot(WIRING, data_dir=str(tmp_path), serialize_messages=True)
    try:
        yield booted
    finally:
        assert booted.shutdown(timeout=10)


@pytest.fixture
def client(system: ActorSystem) -> Iterator[httpx.Client]:
    """The tutorial's ``python -m gateway --chaos``, in-process on a free port."""
    app = create_app(system, AppSettings(chaos=True))
    server = GatewayServer(uvicorn_config(app, "127.0.0.1", 0, drain_timeout=5))
    thread = threading.Thread(target=server.run, name="tutorial-gateway", daemon=True)
    thread.start()
    try:
        assert server.started_event.wait(10), "the gateway did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_poll_counts_votes_and_refuses_unknown_options(system: ActorSystem) -> None:
    poll = system.ref("poll")
    assert poll.ask(Vote(option="tea")) == Tallied(option="tea", votes=1)
    with pytest.raises(AskError) as refused:
        poll.ask(Vote(option="milk"))
    assert refused.value.reply == NoSuchOption(option="milk", detail="no option 'milk'")
    assert poll.ask(Results()) == Standings(votes={"tea": 1, "coffee": 0}, incarnation=1)


# --8<-- [start:restart]
def test_a_crash_restarts_the_poll_with_empty_counts(system: ActorSystem) -> None:
    poll = system.ref("poll")
    poll.ask(Vote(option="coffee"))
    with record_events(system) as events:
        system.inject_fault("poll", "crash")
        events.wait_for(AgentRestarted, where=lambda e: e.agent == "poll")
    assert poll.ask(Ping()).incarnation == 2
    assert poll.ask(Results()) == Standings(votes={"tea": 0, "coffee": 0}, incarnation=2)


# --8<-- [end:restart]


def test_the_tutorials_curl_commands(system: ActorSystem, client: httpx.Client) -> None:
    sections = curl_sections()
    replies: list[Any] = [send(client, argv) for argv in sections["vote"]]
    assert [r.json() for r in replies] == [
        {"type": "Tallied", "option": "tea", "votes": 1},
        {"type": "Tallied", "option": "tea", "votes": 2},
    ]

    (error,) = [send(client, argv) for argv in sections["error"]]
    assert error.status_code == 422
    assert error.headers["content-type"] == "application/problem+json"
    assert error.json()["reply"] == {
        "type": "NoSuchOption",
        "option": "milk",
        "detail": "no option 'milk'",
    }

    (results,) = [send(client, argv) for argv in sections["results"]]
    assert results.json() == {
        "type": "Standings",
        "votes": {"tea": 2, "coffee": 0},
        "incarnation": 1,
    }

    (agents,) = [send(client, argv) for argv in sections["agents"]]
    (view,) = agents.json()
    assert (view["name"], view["status"], view["restarts"]) == ("poll", "running", 0)
    assert view["messages"] == ["Ping", "Results", "Vote"]

    with record_events(system) as events:
        (crash,) = [send(client, argv) for argv in sections["crash"]]
        assert crash.status_code == 202
        events.wait_for(AgentRestarted, where=lambda e: e.agent == "poll")

    described, standings = [send(client, argv) for argv in sections["after"]]
    view = described.json()
    assert (view["status"], view["restarts"], view["incarnation"]) == ("running", 1, 2)
    assert view["last_failure"] == "InjectedCrash: injected crash in poll"
    assert standings.json()["votes"] == {"tea": 0, "coffee": 0}
