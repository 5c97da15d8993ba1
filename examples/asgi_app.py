"""Embed a vibe_actors system in an ASGI app of your own (docs/guides/embedding.md).

The app owns the system: it starts it at ASGI lifespan startup and stops it at
shutdown. ``GET /tally`` is the app's own route, answered by awaiting an ask
(``ask_async`` never blocks the event loop); everything under ``/actors/`` is
the gateway's HTTP API, mounted. Serve it with any ASGI server:

    PYTHONPATH=examples .venv/bin/python -m uvicorn asgi_app:app --port 8000
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tutorial_agent import Poll, PollConfig, Results

import vibe_actors as va
from gateway import create_app

__all__ = ["PollApp", "app"]


# --8<-- [start:app]
class PollApp:
    """An ASGI app that starts an ActorSystem with its lifespan and mounts the gateway."""

    MOUNT = "/actors"

    def __init__(self) -> None:
        tree = va.SupervisorSpec(
            name="root",
            children=(
                va.WorkerSpec(
                    name="poll", agent=Poll, config=PollConfig(options=["tea", "coffee"])
                ),
            ),
        )
        self.system = va.ActorSystem(tree)
        self.gateway = create_app(self.system)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["path"].startswith(self.MOUNT + "/"):
            path = scope["path"].removeprefix(self.MOUNT)
            await self.gateway(dict(scope, path=path, root_path=self.MOUNT), receive, send)
        elif scope["path"] == "/tally":
            standings = await self.system.ref("poll").ask_async(Results(), timeout=2.0)
            await _json(send, 200, {"votes": standings.votes})
        else:
            await _json(send, 404, {"error": "not found"})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await asyncio.to_thread(self.system.start)  # starting blocks: not on the loop
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.system.shutdown, 10.0)
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _json(send: Any, status: int, body: dict[str, Any]) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


app = PollApp()
# --8<-- [end:app]
