"""Two replicas of a durable entity kind on one PostgreSQL database, against a model.

The model holds each id's stored (value, version) and, per replica, what its
activation of the id holds (None: not active). An increment on a replica whose
activation is at the stored version is saved; one on a stale activation is
refused EntityConflict and drops that activation (the next message reloads);
a peek answers what the replica's activation holds, stale or not.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid

import psycopg
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from psycopg import sql

from vibe_actors import ActorSystem, EntityConflict, SystemConfig

from tests.conftest import wait_until
from tests.postgres import database_url
from tests.vibe_actors.test_entities_shared import KIND, Inc, Peek, Tally, kind

IDS = st.sampled_from(["a", "b", "c"])
REPLICAS = st.integers(0, 1)


class ReplicasModel(RuleBasedStateMachine):
    #: The PostgreSQL server; each example gets a database of its own there.
    server = ""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="vibe-entity-model-")
        self.database = f"model_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.server, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        store = database_url(self.server, self.database)
        self.systems = [
            ActorSystem(
                [kind(shards=2)],
                SystemConfig(data_dir=f"{self.dir}/{i}", store=store, serialize_messages=True),
            ).start()
            for i in range(2)
        ]
        self.stored: dict[str, tuple[int, int]] = {}
        self.held: list[dict[str, tuple[int, int]]] = [{}, {}]
        self.conflicts = [0, 0]

    def teardown(self) -> None:
        for system in self.systems:
            system.shutdown(timeout=5.0)
        shutil.rmtree(self.dir, ignore_errors=True)
        with psycopg.connect(self.server, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(self.database)))

    def _activation(self, replica: int, entity_id: str) -> tuple[int, int]:
        """What ``replica``'s activation of ``entity_id`` holds (activated if needed)."""
        held = self.held[replica]
        if entity_id not in held:
            held[entity_id] = self.stored.get(entity_id, (0, 0))
        return held[entity_id]

    @rule(replica=REPLICAS, entity_id=IDS)
    def inc(self, replica: int, entity_id: str) -> None:
        reply = self.systems[replica].entity(KIND, entity_id).ask_future(Inc()).wait(10)
        value, version = self._activation(replica, entity_id)
        if version == self.stored.get(entity_id, (0, 0))[1]:
            assert reply == Tally(value=value + 1)
            self.stored[entity_id] = self.held[replica][entity_id] = (value + 1, version + 1)
        else:
            assert isinstance(reply, EntityConflict), reply
            assert reply.agent == f"{KIND}/{entity_id}"
            del self.held[replica][entity_id]  # dropped: the next message reloads
            self.conflicts[replica] += 1

    @rule(replica=REPLICAS, entity_id=IDS)
    def peek(self, replica: int, entity_id: str) -> None:
        reply = self.systems[replica].entity(KIND, entity_id).ask(Peek())
        assert reply == Tally(value=self._activation(replica, entity_id)[0])

    @invariant()
    def conflicts_are_counted(self) -> None:
        for system, conflicts in zip(self.systems, self.conflicts, strict=True):
            assert system.routes.entity_kind(KIND).stats.conflicts == conflicts

            def dropped(system: ActorSystem = system, conflicts: int = conflicts) -> bool:
                return system.entity_info(KIND).passivations["conflict"] == conflicts

            # The shard drops the stale activation on its own thread, just after the 409.
            wait_until(dropped, what="each stale activation dropped")


def test_two_replicas_follow_the_model(postgres_server):
    class OnPostgres(ReplicasModel):
        server = postgres_server

    run_state_machine_as_test(
        OnPostgres, settings=settings(max_examples=12, stateful_step_count=25, deadline=None)
    )
