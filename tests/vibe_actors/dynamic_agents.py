"""Agents and messages for the dynamic supervisor tests (importable: serialize_messages)."""

from __future__ import annotations

import msgspec

from vibe_actors import Agent, Message, SelfAsk, Terminated, WorkerSpec, handler

from tests.vibe_actors.agents import Journal, Worker


class Spawn(Message):
    """Start ``name`` (a Worker) under ``supervisor``, from this agent's handler."""

    supervisor: str
    name: str


class Spawned(Message):
    name: str
    incarnation: int


class Quit(Message):
    """Terminate this agent through its dynamic supervisor, from its own handler."""


class Spawner(Agent):
    """Starts dynamic children from its handler (a sibling or any agent)."""

    @handler
    def spawn(self, msg: Spawn) -> Spawned:
        ref = self.system.start_child(
            msg.supervisor, WorkerSpec(name=msg.name, agent=Worker, config=self.config)
        )
        return Spawned(name=ref.name, incarnation=self.system.cell(ref.name).incarnation)

    @handler
    def quit(self, msg: Quit) -> None:
        self.system.terminate_child(self.name)


class SelfStarter(Agent):
    """In on_start, asks its own (dynamic) supervisor for a sibling: refused, SelfAsk."""

    def on_start(self) -> None:
        journal: Journal = self.config
        parent = self.system.cell(self.name).parent
        assert parent is not None
        try:
            self.system.start_child(parent.name, WorkerSpec(name="sibling", agent=Worker))
        except SelfAsk:
            journal.add("self-ask", self.name, self.incarnation)
            raise


class Watch(Message):
    name: str


class Watcher(Agent):
    """Watches the agent it is told to; journals each Terminated it gets."""

    @handler
    def watch_one(self, msg: Watch) -> None:
        self.watch(msg.name)

    @handler
    def terminated(self, msg: Terminated) -> None:
        self.config.add("terminated", msg.agent, 0)


class FragileConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    fail: bool = False


class Fragile(Agent):
    """Fails in on_start when configured to, with a message no client should see."""

    Config = FragileConfig

    def on_start(self) -> None:
        if self.config.fail:
            raise ConnectionError("cannot reach postgres://admin:s3cret@db/prod")
