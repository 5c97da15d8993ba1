"""The wiring shipped in the package: the repository's wiring.yaml, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

import phoenix
from phoenix._cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_wiring_is_the_repositorys_and_the_configmaps_byte_for_byte():
    shipped = phoenix.default_wiring().read_bytes()
    assert shipped == (ROOT / "wiring.yaml").read_bytes(), "copy wiring.yaml to phoenix/"
    assert shipped == (ROOT / "deploy" / "k8s" / "base" / "wiring.yaml").read_bytes()


def test_the_shipped_wiring_is_package_data_of_phoenix():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert phoenix.default_wiring().name in pyproject  # listed under package-data
    assert phoenix.default_wiring().parent == Path(phoenix.__file__).parent


SYSTEM_AGENTS = {
    "policy", "quota", "ledger", "state", "audit", "registry", "pubsub", "webhooks",
    "scheduler", "jobs", "introspect", "schema", "watchdog",
}  # fmt: skip


def test_the_shipped_wiring_starts_the_13_system_agents():
    wiring = phoenix.load(phoenix.default_wiring())
    assert set(wiring.agents) == SYSTEM_AGENTS | {"job-workers"}  # the jobs agent's pool


def test_init_writes_the_shipped_wiring_to_wiring_yaml_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert (tmp_path / "wiring.yaml").read_bytes() == phoenix.default_wiring().read_bytes()
    assert capsys.readouterr().out == (
        "wiring.yaml: written; check it with `python -m phoenix check wiring.yaml`\n"
    )


def test_init_refuses_an_existing_file_and_leaves_it_untouched(tmp_path, capsys):
    target = tmp_path / "mine.yaml"
    target.write_text("version: 1\n")
    assert main(["init", str(target)]) == 1
    assert target.read_text() == "version: 1\n"
    assert capsys.readouterr().err == (f"{target}: already exists; pass --force to overwrite it\n")


def test_init_force_overwrites(tmp_path):
    target = tmp_path / "mine.yaml"
    target.write_text("version: 1\n")
    assert main(["init", "--force", str(target)]) == 0
    assert target.read_bytes() == phoenix.default_wiring().read_bytes()


def test_init_into_a_missing_directory_is_one_line_and_exit_1(tmp_path, capsys):
    target = tmp_path / "missing" / "wiring.yaml"
    assert main(["init", str(target)]) == 1
    assert capsys.readouterr().err == f"{target}: cannot write: No such file or directory\n"


def test_init_with_an_unknown_option_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_:
        main(["init", "--overwrite"])
    assert exit_.value.code == 2
