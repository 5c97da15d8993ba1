"""A release, built and installed as a user gets it: the sdist, the wheel built from that
sdist, and the wheel in a fresh venv serving the 13 system agents with no argument and no
file around it.

The fresh venv gets the wheel with ``--no-deps --no-index`` and sees the dependencies
already installed in the test venv through one ``.pth`` line (a plain path: the test
venv's own ``.pth`` files, the editable install of this tree among them, are not run).
So the test needs no index for the install and takes seconds, not minutes of resolving;
what it gives up, resolving the wheel's dependencies, is checked instead by asserting
that every ``Requires-Dist`` of the wheel is met by what the venv sees. Building needs
setuptools for the isolated build environment, from the configured index (a local mirror
works).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until
from tests.gateway.test_process import SYSTEM_AGENTS, free_port, healthy

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.1.0.dev0"

#: Run in the fresh venv: every unconditional requirement of the installed wheel is met.
CHECK_REQUIREMENTS = """
import importlib.metadata as md
from packaging.requirements import Requirement
unmet = []
for line in md.requires("vibe-actors"):
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue  # an extra's requirement
    try:
        found = md.version(req.name)
    except md.PackageNotFoundError:
        unmet.append(f"{req}: not installed")
        continue
    if not req.specifier.contains(found, prereleases=True):
        unmet.append(f"{req}: {found} installed")
print("\\n".join(unmet))
"""

WHERE = "import gateway, phoenix, vibe_actors; print(gateway.__file__, phoenix.__file__, " \
    "vibe_actors.__file__, phoenix.default_wiring(), sep='\\n')"  # fmt: skip


def clean_environ(**extra: str) -> dict[str, str]:
    """The environment without this run's VIBE_* settings or PYTHONPATH."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_") and k != "PYTHONPATH"}
    return kept | extra


#: What a build reads, as the Dockerfile's build stage copies it.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "vibe_actors", "phoenix", "gateway")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """``python -m build``: the sdist, then the wheel built from the unpacked sdist.

    From a clean copy of the sources: in the working tree setuptools would also read the
    editable install's stale ``vibe_actors.egg-info/SOURCES.txt`` and package files that
    ``pyproject.toml`` does not declare.
    """
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        check=True, capture_output=True, timeout=240,
    )  # fmt: skip
    return out


def test_the_sdist_carries_the_license_and_the_shipped_wiring(dist):
    (sdist,) = dist.glob("vibe_actors-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
        top = f"vibe_actors-{VERSION}"
        assert {f"{top}/LICENSE", f"{top}/phoenix/default_wiring.yaml"} <= names
        packaged = archive.extractfile(f"{top}/phoenix/default_wiring.yaml")
        assert packaged is not None
        assert packaged.read() == (ROOT / "wiring.yaml").read_bytes()


def test_the_wheel_carries_the_license_metadata_scripts_wiring_and_console(dist):
    (wheel,) = dist.glob("vibe_actors-*.whl")
    info = f"vibe_actors-{VERSION}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        assert archive.read("phoenix/default_wiring.yaml") == (ROOT / "wiring.yaml").read_bytes()
        for shipped in (ROOT / "gateway" / "console").iterdir():  # the web console's files
            assert archive.read(f"gateway/console/{shipped.name}") == shipped.read_bytes()
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert "License-Expression: MIT\n" in metadata  # PEP 639, not the deprecated table
    assert "License-File: LICENSE\n" in metadata
    assert "Classifier: Typing :: Typed\n" in metadata
    assert "vibe-gateway = gateway._main:main" in entry_points
    assert "vibe-phoenix = phoenix._cli:main" in entry_points


@pytest.mark.timeout(300)
def test_the_wheel_in_a_fresh_venv_serves_the_13_agents_with_no_argument(dist, tmp_path):
    (wheel,) = dist.glob("vibe_actors-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", str(wheel)],
        check=True, timeout=120, env=clean_environ(),
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "test-venv-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"  # no wiring.yaml, no source tree
    elsewhere.mkdir()

    def run_python(code: str) -> str:
        return subprocess.run(
            [str(python), "-c", code], cwd=elsewhere, env=clean_environ(),
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip

    assert run_python(CHECK_REQUIREMENTS).strip() == ""
    located = run_python(WHERE).split()
    assert all(path.startswith(site) for path in located), located  # the wheel, not this tree
    shipped = located[-1]

    port = free_port()
    process = subprocess.Popen(
        [str(env_dir / "bin" / "vibe-gateway")],  # no argument: defaults and VIBE_* only
        cwd=elsewhere, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=clean_environ(VIBE_PORT=str(port), VIBE_DATA_DIR=str(tmp_path / "data")),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(url) or process.poll() is not None, 30, "the installed gateway")
        assert process.poll() is None, process.communicate(timeout=10)[1].decode()
        ready = httpx.get(f"{url}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        names = {agent["name"] for agent in httpx.get(f"{url}/v1/agents", timeout=5).json()}
        assert names >= SYSTEM_AGENTS
        console = httpx.get(f"{url}/ui/", timeout=5)  # the console, from the wheel's files
        assert console.status_code == 200 and "console.js" in console.text
    finally:
        process.send_signal(signal.SIGTERM)
        _, logs = process.communicate(timeout=30)
    assert process.returncode == 0, logs.decode()
    events = [json.loads(line) for line in logs.splitlines() if line.startswith(b"{")]
    (starting,) = [e for e in events if e["event"] == "gateway_starting"]
    assert starting["wiring"] == shipped  # the fallback found the wheel's own wiring
    assert any((tmp_path / "data").iterdir())  # the durable agents' files: the temp data dir
