"""deploy/ checked without a container engine: hadolint, rendered manifests, and their contract."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vibe_actors import SupervisorSpec

from tests.conftest import worker
from tests.gateway.test_process import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert path, f"{name} is not installed (pip install -e '.[deploy]')"
    return path


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    out = subprocess.run(
        [tool("kubectl"), "kustomize", str(DEPLOY / "k8s" / "overlays" / "example")],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_hadolint_passes_on_the_dockerfile():
    result = subprocess.run(
        [tool("hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_manifests_validate_against_kubernetes_schemas(rendered, tmp_path):
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(rendered))
    result = subprocess.run(
        [tool("kubernetes-validate"), "--strict", str(manifest)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = sorted(doc["kind"] for doc in rendered)
    assert kinds == [
        "ConfigMap", "PodDisruptionBudget", "Secret", "Service", "Service", "StatefulSet"
    ]  # fmt: skip


def test_the_statefulset_keeps_the_operational_contract(rendered):
    (sts,) = [d for d in rendered if d["kind"] == "StatefulSet"]
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    env = {e["name"]: e for e in container["env"]}
    drain = float(env["VIBE_DRAIN_TIMEOUT"]["value"])
    assert pod["terminationGracePeriodSeconds"] > drain
    assert env["VIBE_TOKENS"]["valueFrom"]["secretKeyRef"]["name"].startswith("vibe-tokens")
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"  # the overlay's patch
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == env["VIBE_DATA_DIR"]["value"]


def test_the_configmap_wiring_is_the_shipped_wiring():
    assert (DEPLOY / "k8s" / "base" / "wiring.yaml").read_bytes() == (
        ROOT / "wiring.yaml"
    ).read_bytes()


def one(rendered: list[dict], kind: str, name: str | None = None) -> dict:
    (doc,) = [d for d in rendered if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return doc


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def test_the_disruption_budget_selects_the_statefulsets_pods(rendered):
    sts = one(rendered, "StatefulSet")
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    pdb = one(rendered, "PodDisruptionBudget")
    assert set(pdb["spec"]["selector"]) == {"matchLabels"}
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)  # empty: no pod
    assert pdb["spec"]["selector"] == sts["spec"]["selector"]  # the same pods, exactly


def test_the_statefulset_is_governed_by_a_headless_service_beside_the_client_one(rendered):
    sts = one(rendered, "StatefulSet")
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    headless = one(rendered, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    client = one(rendered, "Service", "vibe-gateway")
    assert client["spec"].get("clusterIP") != "None" and client is not headless
    for service in (headless, client):
        assert selects(service["spec"]["selector"], pod_labels), service["metadata"]["name"]
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_the_overlay_sets_the_image_tag_and_the_base_names_no_moving_tag(rendered):
    (container,) = one(rendered, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    name, _, tag = container["image"].rpartition(":")
    assert name == "registry.example.com/vibe-actors/gateway" and tag == "0.1.0"
    base = yaml.safe_load((DEPLOY / "k8s" / "base" / "statefulset.yaml").read_text())
    (base_container,) = base["spec"]["template"]["spec"]["containers"]
    assert ":" not in base_container["image"], "the tag belongs to the overlay (images:)"
    assert "imagePullPolicy" not in base_container  # Kubernetes' default follows the tag


def test_the_base_image_is_pinned_by_digest_in_every_stage():
    text = (DEPLOY / "Dockerfile").read_text()
    (pinned,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", pinned), pinned
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]


def sent_to_the_builder(path: str, rules: list[str]) -> bool:
    """Docker's .dockerignore: the last rule matching the path or a parent decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    sent = True
    for rule in rules:
        keep = rule.startswith("!")
        pattern = rule.removeprefix("!")
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            sent = keep
    return sent


def test_dockerignore_sends_what_the_dockerfile_copies_and_nothing_else():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = [
        source
        for args in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.MULTILINE)
        for source in args.split()[:-1]
    ]
    assert {"pyproject.toml", "LICENSE", "constraints.txt", "wiring.yaml", "gateway"} <= set(copied)
    for source in copied:
        assert sent_to_the_builder(source, rules), f"{source} is copied but ignored"
    assert sent_to_the_builder("phoenix/default_wiring.yaml", rules)
    for path in (
        ".venv/bin/python",
        ".git",
        "tests/conftest.py",
        "var/ledger.sqlite",
        "gateway/__pycache__/app.cpython-311.pyc",
        "build/site/index.html",
    ):
        assert not sent_to_the_builder(path, rules), path  # fmt: skip


def healthcheck_command() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    (command,) = re.findall(r"^HEALTHCHECK .*? CMD (\[.*\])$", text, re.MULTILINE)
    argv = json.loads(command)
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def test_the_healthcheck_follows_vibe_port(gateway, tmp_path):
    system, client = gateway(SupervisorSpec(name="root", children=(worker("w"),)))
    port = client.base_url.port
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
    up = subprocess.run(
        healthcheck_command(), env=env | {"VIBE_PORT": str(port)},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    down = subprocess.run(
        healthcheck_command(), env=env | {"VIBE_PORT": str(free_port())},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert down.returncode == 1  # nothing listens there: unhealthy


def test_the_dockerfile_runs_the_gateway_in_exec_form_as_non_root():
    text = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "gateway"]' in text
    assert (
        "USER 10001:10001" in text and "HEALTHCHECK" in text and 'VOLUME ["/var/lib/vibe"]' in text
    )
