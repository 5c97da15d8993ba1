"""Ledger replicas on one PostgreSQL database: several systems (as separate gateway
replicas would be) append to the same streams at once; every stream's seqs stay gapless,
every acknowledgement names the record stored, and every chain verifies on every replica.

The replicas share the chain key (``key_file``, as a mounted secret would be); each keeps
its own signed checkpoint in its own data directory."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from vibe_actors import WorkerSpec
from vibe_actors.agents.ledger import Append, Appended, Ledger, Read, Streams, Verify
from vibe_actors.agents.ledger._keys import key_path


def _replicas(make_system: Any, tmp_path: Any, url: str, count: int) -> list[Any]:
    key_file = str(key_path(tmp_path / "shared", "ledger", None))
    spec = WorkerSpec(name="ledger", agent=Ledger, config={"key_file": key_file})
    first = make_system([spec], data_dir=str(tmp_path / "r0"), store=url)
    return [first] + [
        make_system([spec], data_dir=str(tmp_path / f"r{i}"), store=url) for i in range(1, count)
    ]


def test_concurrent_appends_from_replicas_keep_seqs_gapless_and_chains_intact(
    make_system, tmp_path, postgres_url
):
    replicas = _replicas(make_system, tmp_path, postgres_url, 3)
    streams = ("orders", "payments")
    per_writer, writers = 24, 6

    def write(index: int) -> list[Appended]:
        ledger = replicas[index % len(replicas)].ref("ledger")
        futures = [
            ledger.ask_future(Append(stream=streams[n % 2], data={"w": index, "n": n}))
            for n in range(per_writer)
        ]
        return [future.wait() for future in futures]

    with ThreadPoolExecutor(writers) as pool:
        acks = [ack for batch in pool.map(write, range(writers)) for ack in batch]
    assert all(isinstance(ack, Appended) for ack in acks), acks
    for stream in streams:
        seqs = sorted(ack.seq for ack in acks if ack.stream == stream)
        assert seqs == list(range(1, len(seqs) + 1))  # gapless, none given twice
    reader = replicas[0].ref("ledger")
    for stream in streams:
        stored = reader.ask(Read(stream=stream, limit=1000)).records
        by_seq = {ack.seq: ack.hash for ack in acks if ack.stream == stream}
        assert {r.seq: r.hash for r in stored} == by_seq  # each ack names the record stored
        for replica in replicas:
            verified = replica.ref("ledger").ask(Verify(stream=stream))
            assert verified.ok, verified
            assert verified.count == len(by_seq)
    listed = replicas[2].ref("ledger").ask(Streams()).streams
    assert {s.stream: s.count for s in listed} == {
        stream: per_writer * writers // 2 for stream in streams
    }
    rechained = sum(
        r.registry.get_sample_value("vibe_ledger_rechained_batches_total") or 0 for r in replicas
    )
    assert rechained > 0  # the replicas did interleave


def test_replicas_starting_at_once_key_the_database_once(make_system, tmp_path, postgres_url):
    key_file = str(key_path(tmp_path / "shared", "ledger", None))
    spec = WorkerSpec(name="ledger", agent=Ledger, config={"key_file": key_file})
    first = make_system([spec], data_dir=str(tmp_path / "r0"), store=postgres_url)
    first.ref("ledger").ask(Append(stream="s", data=0))  # the key file exists from here
    systems = [
        make_system([spec], data_dir=str(tmp_path / f"r{i}"), store=postgres_url, start=False)
        for i in (1, 2)
    ]
    start = threading.Barrier(2)

    def boot(system: Any) -> None:
        start.wait(10)
        system.start()

    threads = [threading.Thread(target=boot, args=(s,)) for s in systems]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for system in systems:
        assert system.ref("ledger").ask(Append(stream="s", data=1)).stream == "s"
    assert [r.seq for r in first.ref("ledger").ask(Read(stream="s")).records] == [1, 2, 3]
    assert all(s.ref("ledger").ask(Verify(stream="s")).ok for s in [first, *systems])


def test_a_replica_with_another_key_is_refused(make_system, tmp_path, postgres_url):
    (replica,) = _replicas(make_system, tmp_path, postgres_url, 1)
    replica.ref("ledger").ask(Append(stream="s", data=0))
    stranger = make_system(
        [WorkerSpec(name="ledger", agent=Ledger)], data_dir=str(tmp_path / "x"), store=postgres_url
    )
    refused = stranger.ref("ledger").ask_future(Append(stream="s", data=1)).wait()
    assert "key" in str(refused).lower()
    assert replica.ref("ledger").ask(Verify(stream="s")).ok
