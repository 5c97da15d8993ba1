"""Ledger: protocol, validation, the chain, group commit, restarts, tampering, a corrupt file."""

from __future__ import annotations

import hmac
import sqlite3
import tempfile
import threading

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vibe_actors import (
    ActorSystem,
    AskError,
    CodecError,
    Ping,
    SystemConfig,
    UnavailableError,
    WorkerSpec,
)
from vibe_actors.agents.ledger import (
    Append,
    Appended,
    InvalidInput,
    Ledger,
    LedgerConfig,
    LedgerUnavailable,
    Read,
    Records,
    StreamInfo,
    StreamList,
    Streams,
    Tail,
    Verified,
    Verify,
)
from vibe_actors.agents.ledger import _store as _ledger_store
from vibe_actors.store._sqlite import StoreError, database_path

from tests.conftest import wait_until


def ledger_spec(name: str = "ledger", **config) -> WorkerSpec:
    return WorkerSpec(name=name, agent=Ledger, config=LedgerConfig(**config))


def brief_hash(previous: str | None, stream: str, seq: int, data, ts: float, secret: bytes) -> str:
    """The chain rule as specified, independently of the store's implementation: HMAC-SHA256
    with the chain key derived from the key file's secret."""
    record = msgspec.msgpack.encode(
        {"stream": stream, "seq": seq, "data": data, "ts": ts}, order="sorted"
    )
    prev = bytes(32) if previous is None else bytes.fromhex(previous)
    chain_key = hmac.digest(secret, b"vibe-ledger/1 record chain", "sha256")
    return hmac.digest(chain_key, prev + record, "sha256").hex()


def sample(system: ActorSystem, name: str) -> float:
    return system.registry.get_sample_value(name) or 0.0


def tamper(path, sql: str, *params) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(sql, params)
    db.close()


# -- protocol -------------------------------------------------------------------------


def test_append_read_tail_streams_verify(make_system, tmp_path, store):
    system = make_system([ledger_spec()], data_dir=str(tmp_path), store=store)
    ledger = system.ref("ledger")
    values = [{"b": 1, "a": [1, 2.5, None, True]}, "two", 3, None, {"é": {"deep": ["x"]}}]
    acks = [ledger.ask(Append(stream="orders", data=value)) for value in values]
    assert [a.seq for a in acks] == [1, 2, 3, 4, 5]
    assert all(isinstance(a, Appended) and a.stream == "orders" for a in acks)
    ledger.ask(Append(stream="other", data="x"))

    records = ledger.ask(Read(stream="orders")).records
    assert [r.data for r in records] == values
    secret = bytes.fromhex((tmp_path / "keys" / "ledger.key").read_text())
    previous = None
    for ack, record in zip(acks, records, strict=True):
        assert (
            record.hash
            == ack.hash
            == brief_hash(previous, "orders", ack.seq, record.data, record.ts, secret)
        )
        previous = record.hash

    page = ledger.ask(Read(stream="orders", after=2, limit=2))
    assert page == Records(stream="orders", records=records[2:4])
    assert ledger.ask(Tail(stream="orders", limit=2)).records == records[3:]
    assert ledger.ask(Read(stream="nothing")) == Records(stream="nothing", records=[])
    assert ledger.ask(Verify(stream="orders")) == Verified(
        stream="orders", ok=True, count=5, head=acks[-1].hash, broken_at=None
    )
    assert ledger.ask(Verify(stream="nothing")) == Verified(
        stream="nothing", ok=True, count=0, head=None
    )
    listing = ledger.ask(Streams())
    assert listing == StreamList(
        streams=[
            StreamInfo(stream="orders", count=5, head=acks[-1].hash),
            StreamInfo(stream="other", count=1, head=listing.streams[1].head),
        ]
    )


def test_reads_see_every_append_sent_before_them(make_system, tmp_path, store):
    system = make_system([ledger_spec()], data_dir=str(tmp_path), store=store)
    ledger = system.ref("ledger")
    for n in range(50):
        ledger.tell(Append(stream="s", data=n))  # tells: batched, never acknowledged
    assert [r.data for r in ledger.ask(Read(stream="s", limit=1000)).records] == list(range(50))


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (Append(stream="", data=1), "stream"),
        (Append(stream="has space", data=1), "stream"),
        (Append(stream="x" * 129, data=1), "stream"),
        (Append(stream="-leading", data=1), "stream"),
        (Append(stream="s", data=b"bytes"), "data"),
        (Append(stream="s", data={"n": float("nan")}), "data.n"),
        (Append(stream="s", data={"list": [1, {2: "int key"}]}), "data.list[1]"),
        (Append(stream="s", data={"set": {1, 2}}), "data.set"),
        (Append(stream="s", data=2**64), "data"),
        (Read(stream="s", limit=0), "limit"),
        (Read(stream="s", limit=1001), "limit"),
        (Read(stream="s", after=-1), "after"),
        (Tail(stream="bad/../ok?", limit=5), "stream"),
        (Verify(stream=""), "stream"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(make_system, tmp_path, store, message, field):
    # In-process asks without serialization reach the handler unvalidated.
    system = make_system(
        [ledger_spec()], data_dir=str(tmp_path), store=store, serialize_messages=False
    )
    with pytest.raises(AskError) as raised:
        system.ref("ledger").ask(message)
    reply = raised.value.reply
    assert isinstance(reply, InvalidInput) and reply.http_status == 422
    assert reply.field == field


def test_serialized_bad_input_fails_at_the_codec_naming_the_field(make_system, tmp_path, store):
    system = make_system([ledger_spec()], data_dir=str(tmp_path), store=store)
    with pytest.raises(CodecError) as raised:
        system.ref("ledger").ask(Append(stream="no spaces allowed", data=1))
    assert raised.value.path == "$.stream"
    with pytest.raises(CodecError) as raised:
        system.ref("ledger").ask(Read(stream="s", limit=5000))
    assert raised.value.path == "$.limit"


def test_oversized_data_is_refused_and_nothing_is_stored(make_system, tmp_path, store):
    system = make_system([ledger_spec(max_record_bytes=100)], data_dir=str(tmp_path), store=store)
    ledger = system.ref("ledger")
    with pytest.raises(AskError) as raised:
        ledger.ask(Append(stream="s", data="x" * 200))
    assert raised.value.reply.field == "data"
    assert ledger.ask(Append(stream="s", data="small")).seq == 1


# -- durability and failure ---------------------------------------------------------------


def test_records_survive_the_agents_restart_and_seq_continues(make_system, tmp_path, store):
    system = make_system([ledger_spec()], data_dir=str(tmp_path), store=store)
    ledger = system.ref("ledger")
    first = [ledger.ask(Append(stream="s", data=n)) for n in range(3)]
    system.inject_fault("ledger", "crash")
    wait_until(
        lambda: system.cell("ledger").incarnation == 2 and system.status("ledger") == "running",
        what="the ledger's restart",
    )
    assert ledger.ask(Append(stream="s", data=3)).seq == 4
    assert [r.hash for r in ledger.ask(Read(stream="s")).records][:3] == [a.hash for a in first]
    assert ledger.ask(Verify(stream="s")).ok


def test_records_survive_a_new_system_on_the_same_data_dir(make_system, tmp_path, store):
    first = make_system([ledger_spec()], data_dir=str(tmp_path), store=store)
    acks = [first.ref("ledger").ask(Append(stream="s", data=n)) for n in range(5)]
    first.shutdown(timeout=5.0)
    second = make_system([ledger_spec()], data_dir=str(tmp_path), store=store)
    ledger = second.ref("ledger")
    assert [r.hash for r in ledger.ask(Read(stream="s")).records] == [a.hash for a in acks]
    assert ledger.ask(Append(stream="s", data=5)).seq == 6
    assert ledger.ask(Verify(stream="s")).ok


def test_a_failed_commit_acknowledges_nothing_and_the_seq_is_not_used(
    make_system, tmp_path, store, monkeypatch
):
    system = make_system([ledger_spec()], data_dir=str(tmp_path), store=store)
    ledger = system.ref("ledger")
    assert ledger.ask(Append(stream="s", data="kept")).seq == 1
    real_commit = _ledger_store.LedgerStore.commit
    failures = []

    def failing_commit(self, rows, heads, rechain=None):
        if not failures:
            failures.append(len(rows))
            raise StoreError(self.path, "commit failed: disk I/O error")
        return real_commit(self, rows, heads, rechain)

    monkeypatch.setattr(_ledger_store.LedgerStore, "commit", failing_commit)
    with pytest.raises(AskError) as raised:
        ledger.ask(Append(stream="s", data="lost"))
    assert isinstance(raised.value.reply, LedgerUnavailable)
    assert raised.value.reply.http_status == 503
    assert "disk I/O error" in raised.value.reply.detail
    assert ledger.ask(Append(stream="s", data="next")).seq == 2
    assert [r.data for r in ledger.ask(Read(stream="s")).records] == ["kept", "next"]
    assert ledger.ask(Verify(stream="s")).ok
    assert sample(system, "vibe_ledger_commit_failures_total") == 1


def test_a_corrupt_file_degrades_the_ledger_and_names_it(make_system, tmp_path):
    path = database_path(tmp_path, "ledger")
    path.write_bytes(b"not a database" * 1000)
    system = make_system([ledger_spec(), ledger_spec("spare")], data_dir=str(tmp_path))
    assert system.ref("ledger").ask(Ping()).agent == "ledger"
    with pytest.raises(UnavailableError) as raised:
        system.ref("ledger").ask(Append(stream="s", data=1))
    assert str(path) in raised.value.reply.reason
    degraded = {node.name: node.degraded for node in system.walk()}
    assert str(path) in degraded["ledger"]
    assert system.ref("spare").ask(Append(stream="s", data=1)).seq == 1
    assert degraded["spare"] is None


# -- group commit ----------------------------------------------------------------------------


def hammer(system: ActorSystem, threads: int, per_thread: int) -> list[Appended]:
    ledger = system.ref("ledger")
    acks: list[Appended] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            mine = [
                ledger.ask(Append(stream=f"s{index % 3}", data=[index, n]))
                for n in range(per_thread)
            ]
        except AskError as exc:  # reported below, with the thread's context
            errors.append(exc)
            return
        with lock:
            acks.extend(mine)

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not errors and not any(w.is_alive() for w in workers)
    return acks


def test_group_commit_batches_concurrent_appends_and_acks_each(make_system, tmp_path, store):
    system = make_system([ledger_spec()], data_dir=str(tmp_path), store=store)
    acks = hammer(system, threads=16, per_thread=40)
    assert len(acks) == 640
    ledger = system.ref("ledger")
    for stream in ("s0", "s1", "s2"):
        seqs = sorted(a.seq for a in acks if a.stream == stream)
        assert seqs == list(range(1, len(seqs) + 1))
        records = ledger.ask(Read(stream=stream, limit=1000)).records
        assert {r.seq: r.hash for r in records} == {
            a.seq: a.hash for a in acks if a.stream == stream
        }
        assert ledger.ask(Verify(stream=stream)).ok
    commits = sample(system, "vibe_ledger_commit_batch_size_count")
    assert sample(system, "vibe_ledger_commit_batch_size_sum") == 640
    assert sample(system, "vibe_ledger_appends_total") == 640
    assert commits < 640, "group commit should put several appends in one transaction"


def test_without_group_commit_each_append_is_its_own_transaction(make_system, tmp_path, store):
    system = make_system([ledger_spec(group_commit=False)], data_dir=str(tmp_path), store=store)
    acks = hammer(system, threads=4, per_thread=10)
    assert len(acks) == 40
    assert sample(system, "vibe_ledger_commit_batch_size_count") == 40


def test_max_batch_bounds_a_transaction(make_system, tmp_path, store):
    system = make_system([ledger_spec(max_batch=4)], data_dir=str(tmp_path), store=store)
    hammer(system, threads=8, per_thread=20)
    assert system.registry.get_sample_value(
        "vibe_ledger_commit_batch_size_bucket", {"le": "4.0"}
    ) == sample(system, "vibe_ledger_commit_batch_size_count")


# -- properties: the chain holds, and tampering is found --------------------------------------

STREAMS = ["a", "b", "c"]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
TAMPERING = ["data", "ts", "hash", "delete", "delete_last"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    appends=st.lists(st.tuples(st.sampled_from(STREAMS), json_values), min_size=1, max_size=25),
    tampering=st.sampled_from(TAMPERING),
    pick=st.integers(min_value=0),
)
def test_seqs_are_gapless_the_chain_verifies_and_tampering_is_found(appends, tampering, pick):
    with tempfile.TemporaryDirectory() as data_dir:
        config = SystemConfig(data_dir=data_dir, serialize_messages=True)
        with ActorSystem([ledger_spec()], config) as system:
            ledger = system.ref("ledger")
            futures = [ledger.ask_future(Append(stream=s, data=d)) for s, d in appends]
            acks = [future.result() for future in futures]
            counts = {s: sum(1 for stream, _ in appends if stream == s) for s in STREAMS}
            for stream in STREAMS:
                assert [a.seq for a in acks if a.stream == stream] == list(
                    range(1, counts[stream] + 1)
                )
                records = ledger.ask(Read(stream=stream, limit=1000)).records
                assert [r.data for r in records] == [
                    msgspec.msgpack.decode(msgspec.msgpack.encode(d))
                    for s, d in appends
                    if s == stream
                ]
                assert ledger.ask(Verify(stream=stream)) == Verified(
                    stream=stream, ok=True, count=counts[stream],
                    head=records[-1].hash if records else None,
                )  # fmt: skip
            victim = acks[pick % len(acks)]
            stream, seq = victim.stream, victim.seq
            if tampering == "delete_last":
                seq = counts[stream]
            path = database_path(data_dir, "ledger")
            where = "WHERE stream = ? AND seq = ?"
            statements = {
                "data": f"UPDATE records SET data = X'a874616d7065726564' {where}",
                "ts": f"UPDATE records SET ts = ts + 1 {where}",
                "hash": f"UPDATE records SET hash = '{'0' * 64}' {where}",
                "delete": f"DELETE FROM records {where}",
                "delete_last": f"DELETE FROM records {where}",
            }
            tamper(path, statements[tampering], stream, seq)
            verdict = ledger.ask(Verify(stream=stream))
            assert (verdict.ok, verdict.broken_at, verdict.count) == (False, seq, seq - 1)
