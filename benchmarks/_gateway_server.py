"""Server processes for benchmarks/gateway.py: the gateway, a bare ASGI hello-world, or
the smallest ASGI app that asks a Pykka actor (the reference point for the actor hop).

All run under the same uvicorn settings and process tuning (gateway.uvicorn_config,
gateway.tune_gc), so the difference between bare and gateway is the gateway's own
cost: routing, JSON decoding into a message, the actor hop and back, encoding,
metrics, request ids; and between pykka and gateway, everything but the hop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

import msgspec
import pykka
import structlog

import vibe_actors as va
from gateway import GatewayServer, GatewaySettings, create_app, tune_gc, uvicorn_config


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


class PykkaEcho(pykka.ThreadingActor):
    """A plain Pykka actor answering Ping through a callback onto the asker's loop."""

    def on_receive(self, message: Any) -> None:
        loop, future = message
        loop.call_soon_threadsafe(_resolve, future, va.Pong(agent="registry", incarnation=1))


def _resolve(future: asyncio.Future[Any], reply: Any) -> None:
    if not future.done():  # the request's task was cancelled (its client went away)
        future.set_result(reply)


def pykka_app(actor: pykka.ActorRef[Any]) -> Any:
    """The same exchange as the gateway's with nothing else: decode, ask, encode.

    No routing, status check, deadline, request id, metrics or error mapping:
    what is left over bare is the actor hop itself (the issue's "raw ASGI app
    with a callback bridge to a Pykka actor").
    """
    decode = msgspec.json.Decoder(va.Ping).decode
    encode = msgspec.json.Encoder().encode

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        message = await receive()
        decode(message.get("body", b""))
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        actor.tell((loop, future))
        body = encode(await future)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", choices=["bare", "pykka", "gateway"], required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    # The process tuning of `python -m gateway`, for both servers alike.
    tune_gc(GatewaySettings().gc_threshold)
    system, actor = None, None
    if args.variant == "gateway":
        tree = va.SupervisorSpec(
            name="root", children=(va.WorkerSpec(name="registry", agent=Echo),)
        )
        system = va.ActorSystem(tree).start()
        app = create_app(system)
    elif args.variant == "pykka":
        actor = PykkaEcho.start()
        app = pykka_app(actor)
    else:
        app = bare_app
    server = GatewayServer(uvicorn_config(app, "127.0.0.1", args.port, drain_timeout=5))
    try:
        server.run()
    finally:
        if system is not None:
            system.shutdown()
        if actor is not None:
            actor.stop()


if __name__ == "__main__":
    main()
