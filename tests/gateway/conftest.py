"""A real gateway: uvicorn on 127.0.0.1, a free port, in a background thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from gateway import AppSettings, GatewayServer, create_app, uvicorn_config
from vibe_actors import ActorSystem


@contextmanager
def serving(system: ActorSystem, **settings: Any) -> Iterator[httpx.Client]:
    app = create_app(system, AppSettings(**settings))
    with serve(app, on_cut_off=app.metrics.cut_off, on_shutdown=app.close_streams) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


@contextmanager
def serve(app: Any, on_cut_off: Any = None, on_shutdown: Any = None) -> Iterator[httpx.Client]:
    """Any ASGI ``app`` (the gateway, or an app it is mounted in) under the gateway's uvicorn."""
    config = uvicorn_config(app, "127.0.0.1", 0, drain_timeout=5, on_cut_off=on_cut_off)
    server = GatewayServer(config, on_shutdown=on_shutdown)
    thread = threading.Thread(target=server.run, name="test-gateway", daemon=True)
    thread.start()
    try:
        assert server.started_event.wait(10), "the gateway did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def gateway(make_system: Callable[..., ActorSystem]) -> Iterator[Callable[..., Any]]:
    """``gateway(root, **app_settings)`` -> (system, client), stopped after the test."""
    stack: list[Any] = []

    def start(root: Any, system_config: dict[str, Any] | None = None, **settings: Any) -> Any:
        system = make_system(root, **(system_config or {}))
        context = serving(system, **settings)
        client = context.__enter__()
        stack.append(context)
        return system, client

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)
