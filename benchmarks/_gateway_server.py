"""Server processes for benchmarks/gateway.py: the gateway, or a bare ASGI hello-world.

Both run under the same uvicorn settings (gateway.uvicorn_config), so the
difference between them is the gateway's own cost: routing, JSON decoding
into a message, the actor hop and back, encoding, metrics.
"""

from __future__ import annotations

import argparse
import logging

import structlog

import vibe_actors as va
from gateway import GatewayServer, create_app, uvicorn_config


async def bare_app(scope, receive, send):  # type: ignore[no-untyped-def]
    """Hello-world POST: read the body, answer a small JSON object."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"type":"Pong","agent":"bare","incarnation":1}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Echo(va.Agent):
    """Answers Ping (inherited); stands in for any agent on the hot path."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", choices=["bare", "gateway"], required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    system = None
    if args.variant == "gateway":
        tree = va.SupervisorSpec(
            name="root", children=(va.WorkerSpec(name="registry", agent=Echo),)
        )
        system = va.ActorSystem(tree).start()
        app = create_app(system)
    else:
        app = bare_app
    server = GatewayServer(uvicorn_config(app, "127.0.0.1", args.port, drain_timeout=5))
    server.run()
    if system is not None:
        system.shutdown()


if __name__ == "__main__":
    main()
