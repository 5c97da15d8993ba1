"""The console in a real browser: Debian's Chromium, headless, driven by Playwright.

Each test starts from a page opened on a real ``python -m gateway`` process
serving the shipped wiring (13 system agents, ``--chaos``), and waits on what
the page shows with Playwright's ``expect`` (deadlines, never sleeps).
Screenshots of the tree and of an agent's page go to ``build/``.

Without a Chromium every test here is skipped with one line saying how to get
one; the console's server side is tested without a browser in test_console.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from gateway import create_app
from vibe_actors import ActorSystem, SupervisorSpec, WorkerSpec
from vibe_actors.agents.introspect import Introspect
from vibe_actors.agents.pubsub import PubSub

from tests.conftest import wait_until, worker
from tests.gateway.conftest import serve
from tests.gateway.test_mount import starlette_app
from tests.gateway.test_process import free_port, healthy

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
#: The browser: VIBE_CHROMIUM, else Debian's chromium on the PATH.
CHROMIUM = os.environ.get("VIBE_CHROMIUM") or shutil.which("chromium")
#: Without them Chromium reaches for Google's services, and its own connections are refused.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SYSTEM_AGENTS = (
    "policy", "quota", "ledger", "state", "audit", "registry", "pubsub", "webhooks",
    "scheduler", "jobs", "introspect", "schema", "watchdog",
)  # fmt: skip
#: Long enough for a loaded CI machine; every wait ends as soon as its condition holds.
WAIT_MS = 20_000

if CHROMIUM is None:  # one line for the whole module in the summary, not one per test
    pytest.skip(
        "no Chromium: `apt-get install -y chromium` (or VIBE_CHROMIUM=/path/to/chromium) runs "
        "the console's browser tests",
        allow_module_level=True,
    )
pytestmark = pytest.mark.timeout(120)


class GatewayProcess:
    """``python -m gateway`` on a free port with the shipped wiring and ``--chaos``."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        command = [sys.executable, "-m", "gateway", "--port", port, "--chaos"]
        command += ["--data-dir", str(tmp / "data"), "--wiring", str(ROOT / "wiring.yaml")]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
        self.log = tmp / "gateway.log"
        with open(self.log, "wb") as sink:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, env={**environ, **env}
            )
        wait_until(lambda: healthy(self.url) or self.process.poll() is not None, 60, "gateway")
        assert self.process.poll() is None, self.log.read_text()[-3000:]

    def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway for the tests without tokens (each asserts only what it changes)."""
    process = GatewayProcess(tmp_path_factory.mktemp("console"), {})
    yield process
    process.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))

    def refused_by_policy(message: Any) -> None:  # a CSP violation is logged, not raised
        if "Content Security Policy" in message.text:
            errors.append(message.text)

    opened.on("console", refused_by_policy)
    yield opened
    context.close()
    assert errors == []  # no script error and nothing the CSP refused, on any page


def open_console(page: Page, url: str, view: str = "tree") -> None:
    page.goto(f"{url}/ui/#/{view}")
    expect(page.locator("#live")).to_have_text("live", timeout=WAIT_MS)


def node(page: Page, name: str) -> Any:
    return page.locator(f'#tree .node[data-name="{name}"]')


def restarts(url: str, name: str) -> int:
    count: int = httpx.get(f"{url}/v1/agents/{name}", timeout=10).json()["restarts"]
    return count


def test_the_tree_shows_the_13_system_agents_running(page, server):
    open_console(page, server.url)
    for name in SYSTEM_AGENTS:
        expect(node(page, name)).to_have_attribute("data-status", "running", timeout=WAIT_MS)
    expect(node(page, "data")).to_contain_text("rest_for_one")  # a supervisor's strategy
    expect(node(page, "job-workers")).to_have_attribute("data-kind", "pool")
    BUILD.mkdir(exist_ok=True)
    page.screenshot(path=str(BUILD / "console-tree.png"), full_page=True)


def test_a_crashed_agent_flashes_shows_restarting_and_comes_back(page, server):
    open_console(page, server.url)
    state = node(page, "state")
    expect(state).to_have_attribute("data-status", "running", timeout=WAIT_MS)
    before = restarts(server.url, "state")
    # Every status the node takes, recorded as the page sets it (a restart takes milliseconds).
    page.evaluate(
        """() => {
            window.seenStatuses = [];
            new MutationObserver((records) => {
                for (const r of records) {
                    for (const n of [r.target, ...r.addedNodes]) {
                        const found = n.querySelectorAll ? [n, ...n.querySelectorAll('.node')] : [];
                        for (const el of found) {
                            if (el.dataset && el.dataset.name === 'state') {
                                window.seenStatuses.push(el.dataset.status);
                            }
                        }
                    }
                }
            }).observe(document.getElementById('tree'),
                       {subtree: true, childList: true, attributes: true,
                        attributeFilter: ['data-status']});
        }"""
    )
    assert httpx.post(f"{server.url}/v1/chaos/state/crash", timeout=10).status_code == 202
    page.wait_for_function("() => window.seenStatuses.includes('restarting')", timeout=WAIT_MS)
    feed = page.locator("#event-feed")
    crashed = feed.locator('li[data-type="AgentCrashedEvent"][data-agent="state"]').first
    expect(crashed).to_be_attached(timeout=WAIT_MS)
    restarted = feed.locator('li[data-type="AgentRestarted"][data-agent="state"]').first
    expect(restarted).to_be_attached(timeout=WAIT_MS)
    expect(state).to_have_class(re.compile(r"\bflash\b"), timeout=WAIT_MS)
    expect(state).to_have_attribute("data-restarts", str(before + 1), timeout=WAIT_MS)
    expect(state).to_have_attribute("data-status", "running", timeout=WAIT_MS)
    state.get_by_role("link", name="state").click()  # its page: the failure and its traceback
    failure = page.locator("#agent-failure")
    expect(failure).to_contain_text("InjectedCrash: injected crash in state", timeout=WAIT_MS)
    expect(failure).to_contain_text("Traceback (most recent call last)")


def test_an_agent_page_shows_its_figures_and_sends_a_ping_through_the_form(page, server):
    open_console(page, server.url, "agent/state")
    expect(page.locator("#agent-status")).to_have_text("running", timeout=WAIT_MS)
    expect(page.locator('#agent-facts dd[data-fact="incarnation"]')).to_have_text(re.compile(r"\d"))
    expect(page.locator('#agent-schemas details[data-type="Put"]')).to_have_count(1)
    page.locator("#send-type").select_option("Ping")
    page.locator("#send-button").click()
    result = page.locator("#send-result")
    expect(result).to_have_attribute("data-outcome", "ok", timeout=WAIT_MS)
    expect(result).to_contain_text('"type": "Pong"')
    page.locator("#send-type").select_option("Get")
    page.locator("#send-body").fill('{"key": ""}')  # refused by the schema: the problem shows
    page.locator("#send-button").click()
    expect(result).to_have_attribute("data-outcome", "error", timeout=WAIT_MS)
    expect(result).to_contain_text("422")
    expect(page.locator("#agent-metrics")).to_contain_text(
        'vibe_message_duration_seconds_bucket{agent="state"', timeout=WAIT_MS
    )
    expect(page.locator('#agent-durations dd[data-fact="p50"]')).to_have_text(re.compile("ms|s"))
    expect(page.locator("#agent-chart polyline").first).to_be_attached(timeout=WAIT_MS)
    BUILD.mkdir(exist_ok=True)
    page.screenshot(path=str(BUILD / "console-agent.png"), full_page=True)


def test_a_published_event_appears_in_the_topic_tail_as_text(page, server):
    open_console(page, server.url, "topics")
    page.locator("#tail-topic").fill("console.test")
    page.locator("#tail-button").click()
    expect(page.locator("#tail")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    published = httpx.post(
        f"{server.url}/v1/agents/pubsub/Publish",
        json={"topic": "console.test", "data": {"note": "<img src=x onerror=alert(1)>"}},
        timeout=10,
    )
    assert published.status_code == 200, published.text
    expect(page.locator("#tail li")).to_contain_text("<img src=x", timeout=WAIT_MS)
    expect(page.locator("#tail img")).to_have_count(0)  # text, never HTML


def test_a_dead_letter_appears_live_with_its_count(page, server):
    open_console(page, server.url, "dead-letters")
    expect(page.locator("#dead-total")).to_have_text(re.compile(r"^\d+$"), timeout=WAIT_MS)
    expired = page.locator('#dead-list tr[data-reason="expired"][data-target="state"]')
    before = expired.count()  # the list is loaded: what was there before this test
    # A Ping that waits behind a hung handler past its deadline is an expired dead letter.
    assert httpx.post(f"{server.url}/v1/chaos/state/hang?seconds=1", timeout=10).status_code == 202
    late = httpx.post(
        f"{server.url}/v1/agents/state/Ping", json={}, headers={"x-timeout-ms": "100"}, timeout=10
    )
    assert late.status_code == 504, late.text
    expect(expired).to_have_count(before + 1, timeout=WAIT_MS)
    expect(page.locator('#dead-counts tr[data-reason="expired"] .count')).to_have_text(
        re.compile(r"[1-9]\d*"), timeout=WAIT_MS
    )


def test_with_tokens_the_console_asks_for_one_and_refuses_a_wrong_one(page, tmp_path):
    gateway = GatewayProcess(tmp_path, {"VIBE_TOKENS": "alice:console-secret"})
    try:
        assert httpx.get(f"{gateway.url}/v1/tree", timeout=10).status_code == 401
        page.goto(f"{gateway.url}/ui/")
        expect(page.locator("#login")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator("#main")).to_be_hidden()
        page.locator("#token").fill("wrong")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#login-error")).to_have_text(re.compile("refused"), timeout=WAIT_MS)
        page.locator("#token").fill("console-secret")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#live")).to_have_text("live", timeout=WAIT_MS)  # the stream too
        expect(node(page, "state")).to_have_attribute("data-status", "running", timeout=WAIT_MS)
        page.locator("#logout").click()
        expect(page.locator("#login")).to_be_visible(timeout=WAIT_MS)
    finally:
        gateway.close()


def test_mounted_under_a_prefix_the_console_reads_the_api_below_it(
    page: Page, make_system: Callable[..., ActorSystem], tmp_path: Path
) -> None:
    root = SupervisorSpec(
        name="root",
        children=(
            worker("w"),
            WorkerSpec(name="pubsub", agent=PubSub),
            WorkerSpec(name="introspect", agent=Introspect),
        ),
    )
    system = make_system(root, data_dir=str(tmp_path))
    app = create_app(system)
    with serve(starlette_app(app), on_shutdown=app.close_streams) as client:
        open_console(page, str(client.base_url).rstrip("/") + "/actors")
        expect(node(page, "w")).to_have_attribute("data-status", "running", timeout=WAIT_MS)


def test_the_browser_enforces_the_consoles_content_security_policy(browser, server):
    context = browser.new_context()
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    open_console(page, server.url)
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = true'; document.body.append(s); }"
    )
    page.wait_for_function("() => document.readyState === 'complete'")
    wait_until(lambda: bool(refused), 10, "the CSP report")
    assert page.evaluate("() => window.injected") is None  # the inline script never ran
    context.close()
