"""The typed API: refs know their agent's messages, for mypy and at runtime.

``class Store(Agent[Put | Get])`` declares what Store accepts; ``system.ref(name,
agent=Store)`` is then a ``Ref[Put | Get]`` and sending it anything else is a type
error in the user's editor. The runtime checks the declaration against the handlers.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

import vibe_actors.agents
from vibe_actors import Agent, Message, Ping, Pong, Request, Terminated, WorkerSpec, handler


class Put(Message):
    key: str
    value: int


class Get(Message):
    key: str


class Stored(Message):
    key: str


class Store(Agent[Put | Get]):
    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, int] = {}

    @handler
    def put(self, msg: Put) -> Stored:
        self.data[msg.key] = msg.value
        return Stored(key=msg.key)

    @handler
    def get(self, msg: Get) -> int | None:
        return self.data.get(msg.key)


# Lines marked "# error" must be exactly the lines mypy --strict reports.
_SNIPPET = """
from typing import Any

from vibe_actors import ActorSystem, Agent, Message, Ping, Ref, Request, handler


class Put(Message):
    key: str


class Get(Message):
    key: str


class Delete(Message):
    key: str


class Tick(Message):
    pass


class Store(Agent[Put | Get]):
    @handler
    def put(self, msg: Put) -> None: ...

    @handler
    def get(self, msg: Get) -> str:
        return msg.key

    @handler
    def tick(self, msg: Tick) -> None:  # handled, but private: not in the declaration
        self.ref("store", agent=Store).tell(Delete(key="x"))  # error

    def on_failure(self, error: BaseException) -> None:  # the runtime's hook signature
        pass


class Untyped(Agent):  # no declaration: Agent[Any]
    @handler
    def put(self, msg: Put) -> None: ...


def use(system: ActorSystem) -> None:
    store = system.ref("store", agent=Store)
    store.tell(Put(key="a"))
    store.ask(Get(key="a"))
    store.ask(Ping())
    store.ask(Delete(key="a"))  # error
    store.ask_future(Tick())  # error
    store.tell("put")  # error
    wider: Ref[Put | Get | Delete] = system.ref("store")
    narrower: Ref[Put] = store  # contravariant: accepts at least Put
    narrower.tell(Put(key="b"))
    wider.tell(Delete(key="b"))
    system.ref("untyped", agent=Untyped).ask(Delete(key="a"))
    system.ref("anything").ask(Delete(key="a"))
    plain: Ref = store
    plain.tell(1)


async def use_async(system: ActorSystem) -> Any:
    return await system.ref("store", agent=Store).ask_async(Delete(key="a"))  # error


def mutate(put: Put) -> None:
    put.key = "b"  # error


class Count(Message):
    n: int


class HowMany(Request[Count]):
    key: str


class Counter(Agent[HowMany]):
    @handler
    def how_many(self, msg: HowMany) -> Count:
        return Count(n=1)


def counted(system: ActorSystem) -> int:
    ref = system.ref("counter", agent=Counter)
    reply = ref.ask(HowMany(key="a"))
    text: str = reply.n  # error
    pong = ref.ask(Ping())
    incarnation: int = pong.incarnation
    direct: Count = system.ask("counter", HowMany(key="a"))
    return reply.n + direct.n + incarnation


async def counted_async(system: ActorSystem) -> int:
    reply = await system.ref("counter").ask_async(HowMany(key="a"))
    reply.missing  # error
    either = await system.ref("counter").ask_async(HowMany(key="a"), raise_errors=False)
    return either.n  # error
"""


def _expected_lines(source: str) -> set[int]:
    return {n for n, line in enumerate(source.splitlines(), 1) if line.endswith("# error")}


def test_mypy_rejects_a_message_the_agent_does_not_accept(tmp_path: Path) -> None:
    source = textwrap.dedent(_SNIPPET).lstrip()
    snippet = tmp_path / "snippet.py"
    snippet.write_text(source)
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            "--hide-error-context",
            str(snippet),
        ]
    )
    ours = [
        line
        for line in stdout.splitlines()
        if line.startswith(str(snippet)) and ": note:" not in line
    ]
    reported = {
        int(m.group(1))
        for m in (re.match(rf"{re.escape(str(snippet))}:(\d+):", line) for line in ours)
        if m
    }
    assert reported == _expected_lines(source), "\n".join(ours) + stderr
    assert status == 1
    codes = (
        "[arg-type]",
        "[call-overload]",
        "[misc]",
        "[assignment]",
        "[attr-defined]",
        "[union-attr]",
    )
    assert all(any(code in line for code in codes) for line in ours), "\n".join(ours)


def test_a_declared_message_needs_a_handler() -> None:
    with pytest.raises(TypeError, match=r"Half declares Get in Agent\[\.\.\.\] but has no handler"):

        class Half(Agent[Put | Get]):
            @handler
            def put(self, msg: Put) -> Stored:
                return Stored(key=msg.key)


def test_a_fallback_accepts_whatever_is_declared() -> None:
    class Proxy(Agent[Put | Get]):
        def on_unhandled(self, message: object) -> None:
            return None

    assert Put not in Proxy.message_types()
    assert Proxy.declared_messages() == (Put, Get)


def test_the_declaration_is_inherited_and_undeclared_is_empty() -> None:
    class Sub(Store):
        pass

    class Plain(Agent):
        pass

    assert Store.declared_messages() == (Put, Get)
    assert Sub.declared_messages() == (Put, Get)
    assert Plain.declared_messages() == ()


def test_a_typed_ref_sends_like_any_ref(make_system) -> None:
    system = make_system([WorkerSpec(name="store", agent=Store)], serialize_messages=True)
    store = system.ref("store", agent=Store)
    assert store == system.ref("store")
    assert store.ask(Put(key="a", value=1)) == Stored(key="a")
    assert store.ask(Get(key="a")) == 1
    assert store.ask(Get(key="b")) is None
    assert isinstance(store.ask(Ping()), Pong)
    assert {Put, Get} <= set(Store.message_types())


def _system_agents() -> list[type[Agent]]:
    found = []
    for info in pkgutil.iter_modules(vibe_actors.agents.__path__):
        module = importlib.import_module(f"vibe_actors.agents.{info.name}")
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, Agent)
                and obj.__module__ == module.__name__
            ):
                found.append(obj)
    return found


def test_every_system_agent_declares_exactly_its_public_protocol() -> None:
    agents = {cls.__name__: cls for cls in _system_agents() if cls.message_types() != (Ping,)}
    assert len(agents) == 13, sorted(agents)
    for cls in agents.values():
        public = set(cls.message_types()) - {Ping, Terminated}
        assert set(cls.declared_messages()) == public, cls.__name__


class Count(Message):
    n: int


class HowMany(Request[Count]):
    key: str


class Counter(Agent[HowMany]):
    @handler
    def how_many(self, msg: HowMany) -> Count:
        return Count(n=len(msg.key))


def test_a_request_is_a_message_like_any_other(make_system) -> None:
    system = make_system([WorkerSpec(name="counter", agent=Counter)], serialize_messages=True)
    assert system.ref("counter", agent=Counter).ask(HowMany(key="abc")) == Count(n=3)
    assert system.ask("counter", HowMany(key="ab")).n == 2
    assert HowMany in Counter.message_types()
    assert isinstance(system.ask("counter", Ping()), Pong)  # Ping is a Request[Pong]


def test_request_itself_is_no_handler_type() -> None:
    with pytest.raises(TypeError, match="base class"):

        class Wrong(Agent):
            @handler
            def any_request(self, msg: Request) -> None: ...  # type: ignore[type-arg]
