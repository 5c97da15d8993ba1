"""Joining or starting the Ray cluster, once per process (imports Ray).

A local cluster (no ``address``) listens on 127.0.0.1 only: Ray 2.60 replaces
loopback with the machine's interface address unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set together with
``_node_ip_address="127.0.0.1"``. The dashboard and usage statistics are off.
A cluster this process started lives as long as the process (Ray's own exit
hook shuts it down); :func:`disconnect` ends it earlier.
"""

from __future__ import annotations

import os
import threading

import ray
import structlog

from vibe_actors.ray._settings import RaySettings

__all__ = ["LOOPBACK", "RayPlacementError", "connect", "disconnect"]

LOOPBACK = "127.0.0.1"
#: Ray appends about 60 characters (``session_<date>_<pid>/sockets/plasma_store``) to the
#: temp dir, and a Unix socket path holds at most 107.
_MAX_TEMP_DIR = 45

_lock = threading.Lock()
#: Set to make the thread that started Ray shut it down; set by it when done.
_stop = threading.Event()
_stopped = threading.Event()
#: The thread that started Ray, while it runs (None: Ray is not ours, or not started).
_owner: threading.Thread | None = None
_log = structlog.get_logger("vibe_actors.ray")


class RayPlacementError(RuntimeError):
    """Ray cannot be used as configured (the message says what to change)."""


def connect(settings: RaySettings, data_dir: str, timeout: float = 60.0) -> None:
    """Connect this process to Ray unless it already is (by us or by the embedding app).

    ``ray.init`` runs in a thread of its own that lives until :func:`disconnect`: Ray
    starts its local processes with a parent-death signal, which Linux ties to the
    *thread* that started them, so starting them from an agent's thread would kill the
    cluster when that incarnation ends.
    """
    with _lock:
        if ray.is_initialized():
            return
        done = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                _init(settings, data_dir)
            except Exception as exc:  # noqa: BLE001 - handed to the caller below
                failure.append(exc)
            finally:
                done.set()
            if not failure:
                _stop.wait()
                ray.shutdown()
                _stopped.set()

        global _owner
        _stop.clear()
        _stopped.clear()
        _owner = threading.Thread(target=run, name="vibe-ray", daemon=True)
        _owner.start()
        if not done.wait(timeout):
            raise RayPlacementError(f"Ray did not start within {timeout}s")
        if failure:
            _owner = None
            raise failure[0]


def _init(settings: RaySettings, data_dir: str) -> None:
    if settings.address is not None:
        _log.info("ray_connect", address=settings.address, namespace=settings.namespace)
        ray.init(address=settings.address, namespace=settings.namespace)
        return
    temp_dir = os.path.abspath(settings.temp_dir or os.path.join(data_dir, "ray"))
    if len(temp_dir) > _MAX_TEMP_DIR:
        raise RayPlacementError(
            f"Ray's temp dir {temp_dir!r} is too long for its socket paths "
            f"(over {_MAX_TEMP_DIR} characters): set ray.temp_dir to a shorter path"
        )
    os.makedirs(temp_dir, exist_ok=True)
    _log.info("ray_start_local", temp_dir=temp_dir, namespace=settings.namespace)
    ray.init(
        namespace=settings.namespace,
        num_cpus=settings.local_cpus,
        include_dashboard=False,
        _node_ip_address=LOOPBACK,
        _temp_dir=temp_dir,
    )


def disconnect(timeout: float = 30.0) -> None:
    """Leave Ray; a local cluster this process started stops. Ray started by the
    embedding application is left to it."""
    global _owner
    with _lock:
        if _owner is not None:
            _stop.set()
            _stopped.wait(timeout)
            _owner = None
