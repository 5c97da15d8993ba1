"""``--store`` / ``VIBE_STORE``: a bad URL or an unreachable database stops the gateway at
start with one clear line (never the password), before any agent starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway._main import boot
from gateway._settings import GatewaySettings, SettingsError
from gateway._settings_cli import parse_settings
from vibe_actors.store import parse_store_url

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--port", "1", *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_flag_and_the_variable_set_the_store():
    url = "postgresql://app:s3cret@db:5432/vibe"
    assert parse_settings(["--store", url], {}).store == url
    assert parse_settings([], {"VIBE_STORE": url}).store == url
    assert parse_settings([], {}).store == ""
    assert "s3cret" not in repr(parse_settings(["--store", url], {}))


def test_a_bad_store_url_is_a_settings_error():
    with pytest.raises(SettingsError, match="--store / VIBE_STORE: store URL scheme 'mysql'"):
        parse_settings(["--store", "mysql://root:pw@h/db"], {})
    with pytest.raises(ValueError, match="store"):
        GatewaySettings(store="redis://x")


def test_an_unreachable_database_is_one_line_and_exit_1(tmp_path):
    url = f"postgresql://app:s3cret@/vibe?host={tmp_path}&port=1"
    done = run("--data-dir", str(tmp_path / "data"), env={"VIBE_STORE": url})
    assert done.returncode == 1, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "store_unavailable" in output and "cannot connect" in output
    assert "s3cret" not in output
    assert "system_started" not in output


WIRING = """
system:
  store: "{store}"
root:
  name: root
  children:
    - name: state
      agent: vibe_actors.agents.state:State
"""


def test_the_flag_overrides_the_wirings_store(tmp_path, postgres_url):
    wiring = tmp_path / "wiring.yaml"
    wiring.write_text(WIRING.format(store="postgresql://nobody@/nowhere?host=/nonexistent"))
    settings = GatewaySettings(wiring=str(wiring), data_dir=str(tmp_path), store=postgres_url)
    system = boot(settings)
    try:
        assert system.config.store == postgres_url
        where = {"agent": "state", "backend": "postgresql", "location": parse_store_url(
            postgres_url
        ).shown}  # fmt: skip
        assert system.registry.get_sample_value("vibe_store_info", where) == 1
    finally:
        system.shutdown()
    wiring.write_text(WIRING.format(store=postgres_url))
    system = boot(GatewaySettings(wiring=str(wiring), data_dir=str(tmp_path)))
    try:
        assert system.config.store == postgres_url  # the wiring's, with no flag
    finally:
        system.shutdown()
