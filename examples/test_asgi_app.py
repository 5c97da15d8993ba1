"""examples/asgi_app.py served by uvicorn (lifespan on): the app's own route and the mounted gateway."""

from __future__ import annotations

import threading

import httpx
import uvicorn
from asgi_app import PollApp


def test_the_app_owns_the_system_and_mounts_the_gateway() -> None:
    app = PollApp()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_config=None)
    )
    thread = threading.Thread(target=server.run, name="asgi-example", daemon=True)
    thread.start()
    try:
        for _ in range(200):  # up to 10 s for uvicorn's startup (and the lifespan's)
            if server.started:
                break
            threading.Event().wait(0.05)
        assert server.started, "uvicorn did not start"
        assert app.system.running
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            vote = client.post("/actors/v1/agents/poll/Vote", json={"option": "tea"})
            assert vote.json() == {"type": "Tallied", "option": "tea", "votes": 1}
            assert client.get("/tally").json() == {"votes": {"tea": 1, "coffee": 0}}
            assert client.get("/actors/healthz").json() == {"status": "ok"}
            assert client.get("/elsewhere").status_code == 404
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()
    assert not app.system.running  # stopped by the lifespan shutdown
