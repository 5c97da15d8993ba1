"""The wheel, installed the way the Dockerfile installs it, serves outside the source tree."""

from __future__ import annotations

import signal
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until
from tests.gateway.test_process import free_port, healthy

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_wheel_in_a_fresh_venv_serves_the_shipped_wiring(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = dist.glob("vibe_actors-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"),
         str(wheel)],
        check=True, timeout=400,
    )  # fmt: skip
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "wiring.yaml").write_text((ROOT / "wiring.yaml").read_text())
    port = free_port()
    process = subprocess.Popen(
        [str(python), "-m", "gateway", "--port", str(port), "--data-dir", str(outside / "var")],
        cwd=outside, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(url) or process.poll() is not None, 30, "the installed gateway")
        assert process.poll() is None, process.stderr.read().decode()
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    imported = subprocess.run(
        [str(python), "-c", "import vibe_actors, phoenix, gateway; print(vibe_actors.__file__)"],
        cwd=outside, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert str(env_dir) in imported  # the installed copy, not the source tree
