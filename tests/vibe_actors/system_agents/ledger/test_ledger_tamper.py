"""Ledger tamper evidence: the keyed chain, the signed checkpoint, the upgrade, bounded integers.

Each tampering is done the way an attacker with write access to the data
directory (but not the key) would: on the files, with the ledger stopped,
then a new system reads them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import stat
from pathlib import Path

import msgspec
import pytest
from structlog.testing import capture_logs

from vibe_actors import AskError, CodecError, UnavailableError, WorkerSpec
from vibe_actors.agents.ledger import (
    Append,
    Appended,
    InvalidInput,
    Ledger,
    LedgerConfig,
    Read,
    Tail,
    Verified,
    Verify,
)
from vibe_actors.agents.ledger import _store as _ledger_store
from vibe_actors.agents.ledger._chain import LedgerRangeError
from vibe_actors.store._sqlite import database_path

from tests.conftest import wait_until
from tests.gateway.conftest import serving

SPEC = [WorkerSpec(name="ledger", agent=Ledger, config=LedgerConfig())]


def key_file(data_dir) -> Path:
    return Path(data_dir, "keys", "ledger.key")


def checkpoint_file(data_dir) -> Path:
    return Path(data_dir, "ledger.checkpoints")


def checkpointed(data_dir) -> dict:
    """The streams of the checkpoint file as last written ({} while there is none)."""
    path = checkpoint_file(data_dir)
    return msgspec.json.decode(path.read_bytes())["streams"] if path.is_file() else {}


def canonical(stream: str, seq: int, ts: float, data: bytes) -> bytes:
    """The canonical record as the ledger hashes it (``data`` is stored canonical msgpack)."""
    record = {"data": msgspec.Raw(data), "seq": seq, "stream": stream, "ts": ts}
    return msgspec.msgpack.encode(record, order="sorted")


def unkeyed_hash(previous: str | None, record: bytes) -> str:
    """The chain rule before keys: what anyone can recompute."""
    prev = bytes(32) if previous is None else bytes.fromhex(previous)
    return hashlib.sha256(prev + record).hexdigest()


def keyed_hash(secret: bytes, previous: str | None, record: bytes) -> str:
    prev = bytes(32) if previous is None else bytes.fromhex(previous)
    chain_key = hmac.digest(secret, b"vibe-ledger/1 record chain", "sha256")
    return hmac.digest(chain_key, prev + record, "sha256").hex()


def rows(data_dir, stream: str) -> list[tuple]:
    db = sqlite3.connect(database_path(data_dir, "ledger"))
    found = db.execute(
        "SELECT seq, ts, data, hash FROM records WHERE stream = ? ORDER BY seq", (stream,)
    ).fetchall()
    db.close()
    return found


def rewrite_chain(data_dir, stream: str, rehash, *, edit_seq: int | None = None) -> None:
    """Replace record ``edit_seq``'s data (if given), recompute every hash of ``stream`` with
    ``rehash(previous, record)`` and rewrite its stored head to match: a forger's work."""
    db = sqlite3.connect(database_path(data_dir, "ledger"), isolation_level=None)
    previous = None
    for seq, ts, data, _ in rows(data_dir, stream):
        if seq == edit_seq:
            data = msgspec.msgpack.encode("forged")
        previous = rehash(previous, canonical(stream, seq, ts, data))
        db.execute(
            "UPDATE records SET data = ?, hash = ? WHERE stream = ? AND seq = ?",
            (data, previous, stream, seq),
        )
    db.execute("UPDATE streams SET head = ? WHERE stream = ?", (previous, stream))
    db.close()


def truncate(data_dir, stream: str, keep: int) -> None:
    """Delete the records of ``stream`` after ``keep`` and rewrite its head to record ``keep``."""
    db = sqlite3.connect(database_path(data_dir, "ledger"), isolation_level=None)
    db.execute("DELETE FROM records WHERE stream = ? AND seq > ?", (stream, keep))
    (head,) = db.execute(
        "SELECT hash FROM records WHERE stream = ? AND seq = ?", (stream, keep)
    ).fetchone()
    db.execute("UPDATE streams SET count = ?, head = ? WHERE stream = ?", (keep, head, stream))
    db.close()


def filled(make_system, data_dir, stream: str = "s", n: int = 5) -> list[Appended]:
    """A ledger in ``data_dir`` with ``n`` records in ``stream``, then stopped."""
    system = make_system(SPEC, data_dir=str(data_dir))
    acks = [system.ref("ledger").ask(Append(stream=stream, data={"n": i})) for i in range(n)]
    assert system.ref("ledger").ask(Verify(stream=stream)).ok
    system.shutdown(timeout=5.0)
    return acks


# -- truncation and forged chains ------------------------------------------------------------


@pytest.mark.parametrize("keep", [4, 2])
def test_truncation_with_the_head_rewritten_is_found_after_a_restart(make_system, tmp_path, keep):
    filled(make_system, tmp_path, n=5)
    truncate(tmp_path, "s", keep)
    ledger = make_system(SPEC, data_dir=str(tmp_path)).ref("ledger")
    verdict = ledger.ask(Verify(stream="s"))
    assert (verdict.ok, verdict.count, verdict.broken_at) == (False, keep, keep + 1)
    assert "signed checkpoint" in verdict.reason
    # Appending would reuse the removed seqs and cover the gap: refused, and nothing stored.
    with pytest.raises(AskError) as raised:
        ledger.ask(Append(stream="s", data="cover-up"))
    assert type(raised.value.reply).__name__ == "StreamHeld"
    assert raised.value.reply.http_status == 409
    assert [r.seq for r in ledger.ask(Read(stream="s")).records] == list(range(1, keep + 1))
    assert ledger.ask(Append(stream="other", data=1)).seq == 1  # other streams are served


def test_a_chain_recomputed_without_the_key_is_found(make_system, tmp_path):
    filled(make_system, tmp_path, n=4)
    rewrite_chain(tmp_path, "s", unkeyed_hash, edit_seq=3)
    ledger = make_system(SPEC, data_dir=str(tmp_path)).ref("ledger")
    verdict = ledger.ask(Verify(stream="s"))
    assert (verdict.ok, verdict.count, verdict.broken_at) == (False, 0, 1)
    assert verdict.reason == "record 1 does not match its hash"


def test_a_chain_recomputed_with_another_key_is_found(make_system, tmp_path):
    filled(make_system, tmp_path, n=4)
    secret = bytes.fromhex(key_file(tmp_path).read_text())
    _, ts, data, stored = rows(tmp_path, "s")[0]
    assert stored == keyed_hash(secret, None, canonical("s", 1, ts, data)), "keyed by the file"
    other = os.urandom(32)
    rewrite_chain(tmp_path, "s", lambda prev, record: keyed_hash(other, prev, record), edit_seq=2)
    verdict = make_system(SPEC, data_dir=str(tmp_path)).ref("ledger").ask(Verify(stream="s"))
    assert (verdict.ok, verdict.count, verdict.broken_at) == (False, 0, 1)


# -- the checkpoint file ----------------------------------------------------------------------


def test_a_missing_checkpoint_fails_verify_and_is_not_recreated(make_system, tmp_path):
    filled(make_system, tmp_path, n=3)
    os.remove(checkpoint_file(tmp_path))
    ledger = make_system(SPEC, data_dir=str(tmp_path)).ref("ledger")
    verdict = ledger.ask(Verify(stream="s"))
    assert (verdict.ok, verdict.count, verdict.broken_at) == (False, 3, None)
    assert "checkpoint file is missing" in verdict.reason
    assert ledger.ask(Append(stream="s", data="still served")).seq == 4
    assert not ledger.ask(Verify(stream="s")).ok
    assert not os.path.exists(checkpoint_file(tmp_path)), "rewriting it would hide the loss"


@pytest.mark.parametrize("forgery", ["altered", "resigned", "garbage"])
def test_an_altered_or_forged_checkpoint_fails_verify(make_system, tmp_path, forgery):
    filled(make_system, tmp_path, n=5)
    truncate(tmp_path, "s", 3)
    path = checkpoint_file(tmp_path)
    content = msgspec.json.decode(Path(path).read_bytes())
    content["streams"]["s"]["seq"] = 3
    content["streams"]["s"]["hash"] = rows(tmp_path, "s")[2][3]
    if forgery == "resigned":  # a MAC made with a key of the forger's own
        content["mac"] = hmac.digest(os.urandom(32), b"anything", "sha256").hex()
    with open(path, "wb") as file:
        file.write(b"{not json" if forgery == "garbage" else msgspec.json.encode(content))
    before = Path(path).read_bytes()
    ledger = make_system(SPEC, data_dir=str(tmp_path)).ref("ledger")
    verdict = ledger.ask(Verify(stream="s"))
    assert not verdict.ok and str(path) in verdict.reason
    ledger.ask(Append(stream="s", data="later"))
    assert Path(path).read_bytes() == before, "the untrusted file is kept as evidence"


def test_a_checkpoint_lagging_the_database_still_verifies(make_system, tmp_path):
    system = make_system(SPEC, data_dir=str(tmp_path))
    ledger = system.ref("ledger")
    for n in range(3):
        ledger.ask(Append(stream="s", data=n))
    # Written by the checkpoint thread, soon after the commit.
    wait_until(lambda: checkpointed(tmp_path).get("s", {}).get("seq") == 3, what="checkpoint 3")
    lagging = checkpoint_file(tmp_path).read_bytes()
    for n in range(3, 6):
        ledger.ask(Append(stream="s", data=n))
    system.shutdown(timeout=5.0)
    # A crash after the database's commit and before the checkpoint's write looks like this.
    with open(checkpoint_file(tmp_path), "wb") as file:
        file.write(lagging)
    ledger = make_system(SPEC, data_dir=str(tmp_path)).ref("ledger")
    assert ledger.ask(Verify(stream="s")) == Verified(
        stream="s", ok=True, count=6, head=rows(tmp_path, "s")[-1][3]
    )
    assert ledger.ask(Append(stream="s", data=6)).seq == 7


def test_the_checkpoint_is_signed_once_per_commit_with_the_committed_heads(make_system, tmp_path):
    system = make_system(SPEC, data_dir=str(tmp_path))
    ledger = system.ref("ledger")
    futures = [ledger.ask_future(Append(stream=f"s{i % 3}", data=i)) for i in range(60)]
    acks = [future.result() for future in futures]
    assert len(acks) == 60
    heads = {
        name: {"seq": last.seq, "hash": last.hash, "unkeyed_until": 0}
        for name in ("s0", "s1", "s2")
        for last in [max((a for a in acks if a.stream == name), key=lambda a: a.seq)]
    }
    wait_until(lambda: checkpointed(tmp_path) == heads, what="the last commit's checkpoint")
    # The file is in place before the writer's thread counts its write: wait for the count.
    sample = system.registry.get_sample_value
    wait_until(lambda: (sample("vibe_ledger_checkpoint_seconds_count") or 0) >= 1, what="a write")
    commits = sample("vibe_ledger_commit_batch_size_count")
    writes = sample("vibe_ledger_checkpoint_seconds_count")
    assert 1 <= writes <= commits <= 60  # one per commit at most (coalesced while busy)


def test_a_failed_checkpoint_write_is_counted_and_the_appends_stand(make_system, tmp_path):
    system = make_system(SPEC, data_dir=str(tmp_path))
    ledger = system.ref("ledger")
    ledger.ask(Append(stream="s", data=0))
    wait_until(lambda: checkpointed(tmp_path) != {}, what="the first checkpoint")
    os.remove(checkpoint_file(tmp_path))
    os.mkdir(checkpoint_file(tmp_path))  # the rename over it now fails
    assert ledger.ask(Append(stream="s", data=1)).seq == 2
    failures = "vibe_ledger_checkpoint_failures_total"
    wait_until(lambda: system.registry.get_sample_value(failures) == 1, what="the failed write")
    assert ledger.ask(Verify(stream="s")).ok  # the incarnation still holds the signed heads
    assert ledger.ask(Append(stream="s", data=2)).seq == 3  # and keeps serving


# -- the key -----------------------------------------------------------------------------------


def test_the_key_file_is_owner_only_and_reused_across_restarts(make_system, tmp_path):
    acks = filled(make_system, tmp_path, n=3)
    path = key_file(tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    secret = Path(path).read_text()
    assert len(bytes.fromhex(secret)) == 32
    ledger = make_system(SPEC, data_dir=str(tmp_path)).ref("ledger")
    assert Path(path).read_text() == secret
    assert ledger.ask(Verify(stream="s")) == Verified(
        stream="s", ok=True, count=3, head=acks[-1].hash
    )
    assert ledger.ask(Append(stream="s", data="after")).seq == 4
    assert ledger.ask(Verify(stream="s")).ok


def test_a_key_file_readable_by_others_is_reported(make_system, tmp_path):
    filled(make_system, tmp_path, n=1)
    os.chmod(key_file(tmp_path), 0o644)
    with capture_logs() as logs:
        ledger = make_system(SPEC, data_dir=str(tmp_path)).ref("ledger")
        assert ledger.ask(Verify(stream="s")).ok
    (exposed,) = [entry for entry in logs if entry["event"] == "ledger_key_file_exposed"]
    assert (exposed["log_level"], exposed["mode"]) == ("warning", "0o644")


def test_a_lost_or_replaced_key_degrades_the_ledger_naming_the_key_file(make_system, tmp_path):
    filled(make_system, tmp_path, n=2)
    saved = key_file(tmp_path).read_text()
    os.remove(key_file(tmp_path))
    system = make_system(SPEC, data_dir=str(tmp_path))
    with pytest.raises(UnavailableError) as raised:
        system.ref("ledger").ask(Append(stream="s", data=1))
    assert str(key_file(tmp_path)) in raised.value.reply.reason
    assert not os.path.exists(key_file(tmp_path)), "a new key would not verify the records"
    system.shutdown(timeout=5.0)
    with open(key_file(tmp_path), "w") as file:
        file.write(os.urandom(32).hex())
    system = make_system(SPEC, data_dir=str(tmp_path))
    with pytest.raises(UnavailableError) as raised:
        system.ref("ledger").ask(Verify(stream="s"))
    assert "restore the key file" in raised.value.reply.reason
    system.shutdown(timeout=5.0)
    with open(key_file(tmp_path), "w") as file:
        file.write(saved)
    assert make_system(SPEC, data_dir=str(tmp_path)).ref("ledger").ask(Verify(stream="s")).ok


def test_the_key_never_appears_in_logs_or_replies(make_system, tmp_path):
    replies = []
    with capture_logs() as logs:
        system = make_system(SPEC, data_dir=str(tmp_path), serialize_messages=False)
        ledger = system.ref("ledger")
        replies.append(ledger.ask(Append(stream="s", data="x")))
        replies.append(ledger.ask(Verify(stream="s")))
        replies.append(ledger.ask(Tail(stream="s")))
        for bad in (Append(stream="s", data=b"bytes"), Read(stream="s", after=2**63)):
            with pytest.raises(AskError) as raised:
                ledger.ask(bad)
            replies.append(raised.value.reply)
        system.shutdown(timeout=5.0)
        os.remove(checkpoint_file(tmp_path))
        ledger = make_system(SPEC, data_dir=str(tmp_path)).ref("ledger")
        replies.append(ledger.ask(Verify(stream="s")))
    secret = key_file(tmp_path).read_text().strip()
    raw = bytes.fromhex(secret)
    assert any(entry["event"] == "ledger_key_generated" for entry in logs)
    texts = [repr(entry) for entry in logs] + [repr(r) for r in replies]
    texts += [msgspec.json.encode(r).decode() for r in replies]
    for text in texts:
        assert secret not in text and secret.upper() not in text and repr(raw) not in text
    assert not replies[-1].ok


# -- the upgrade from unkeyed ledgers ---------------------------------------------------------


def legacy_ledger(data_dir, streams: dict[str, int]) -> None:
    """A database as the unkeyed ledger wrote it: its schema, the sha256 chain."""
    db = sqlite3.connect(database_path(data_dir, "ledger"), isolation_level=None)
    db.executescript(
        "CREATE TABLE records (stream TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL,"
        " data BLOB NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (stream, seq)) WITHOUT ROWID;"
        "CREATE TABLE streams (stream TEXT PRIMARY KEY, count INTEGER NOT NULL,"
        " head TEXT NOT NULL) WITHOUT ROWID;"
    )
    for stream, count in streams.items():
        previous = None
        for seq in range(1, count + 1):
            data, ts = msgspec.msgpack.encode({"old": seq}), 1_700_000_000.0 + seq
            previous = unkeyed_hash(previous, canonical(stream, seq, ts, data))
            db.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?)", (stream, seq, ts, data, previous)
            )
        db.execute("INSERT INTO streams VALUES (?, ?, ?)", (stream, count, previous))
    db.close()


def test_an_unkeyed_ledger_is_adopted_and_new_records_are_keyed(make_system, tmp_path):
    legacy_ledger(tmp_path, {"old": 3, "quiet": 2})
    with capture_logs() as logs:
        ledger = make_system(SPEC, data_dir=str(tmp_path)).ref("ledger")
        assert ledger.ask(Verify(stream="old")).ok
        ack = ledger.ask(Append(stream="old", data="new"))
    adopted = [entry for entry in logs if entry["event"] == "ledger_unkeyed_records_adopted"]
    assert [(e["streams"], e["records"]) for e in adopted] == [(2, 5)]
    assert ack.seq == 4
    secret = bytes.fromhex(key_file(tmp_path).read_text())
    seq, ts, data, stored = rows(tmp_path, "old")[3]
    assert (
        stored
        == ack.hash
        == keyed_hash(secret, rows(tmp_path, "old")[2][3], canonical("old", 4, ts, data))
    )
    assert ledger.ask(Verify(stream="old")) == Verified(
        stream="old", ok=True, count=4, head=ack.hash
    )
    assert ledger.ask(Verify(stream="quiet")).ok


def test_an_upgrade_interrupted_after_its_first_checkpoint_completes_at_the_next_start(
    make_system, tmp_path, monkeypatch
):
    legacy_ledger(tmp_path, {"old": 3})

    def crash_before_the_marker(self, key_id, unkeyed):
        raise _ledger_store.StoreError(self.path, "disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(_ledger_store.LedgerStore, "mark_keyed", crash_before_the_marker)
        system = make_system(SPEC, data_dir=str(tmp_path))
        with pytest.raises(UnavailableError):
            system.ref("ledger").ask(Verify(stream="old"))
        system.shutdown(timeout=5.0)
    assert checkpoint_file(tmp_path).exists()
    ledger = make_system(SPEC, data_dir=str(tmp_path)).ref("ledger")
    assert ledger.ask(Verify(stream="old")).ok
    assert ledger.ask(Append(stream="old", data="new")).seq == 4
    assert ledger.ask(Verify(stream="old")).ok


@pytest.mark.parametrize("stream", ["old", "quiet"])
def test_adopted_unkeyed_records_stay_pinned_by_the_checkpoint(make_system, tmp_path, stream):
    legacy_ledger(tmp_path, {"old": 3, "quiet": 2})
    system = make_system(SPEC, data_dir=str(tmp_path))
    system.ref("ledger").ask(Append(stream="old", data="new"))  # "quiet" gets nothing new
    system.shutdown(timeout=5.0)
    # The forger moves the unkeyed boundary past the keyed records and recomputes them all
    # with the unkeyed rule, which needs no key.
    db = sqlite3.connect(database_path(tmp_path, "ledger"), isolation_level=None)
    db.execute("UPDATE unkeyed_prefix SET seq = 1000")
    db.close()
    rewrite_chain(tmp_path, stream, unkeyed_hash, edit_seq=1)
    verdict = make_system(SPEC, data_dir=str(tmp_path)).ref("ledger").ask(Verify(stream=stream))
    assert not verdict.ok and verdict.broken_at is not None


# -- integers reaching SQLite are bounded (issue 16) ------------------------------------------


def test_read_after_beyond_sqlite_is_refused_and_the_ledger_stays_up(make_system, tmp_path):
    serialized = make_system(SPEC, data_dir=str(tmp_path / "a"))
    with pytest.raises(CodecError) as raised:
        serialized.ref("ledger").ask(Read(stream="s", after=2**63))
    assert raised.value.path == "$.after"
    direct = make_system(SPEC, data_dir=str(tmp_path / "b"), serialize_messages=False)
    ledger = direct.ref("ledger")
    ledger.ask(Append(stream="s", data=1))
    for after in (2**63, 2**200):
        with pytest.raises(AskError) as raised:
            ledger.ask(Read(stream="s", after=after))
        assert isinstance(raised.value.reply, InvalidInput)
        assert (raised.value.reply.field, raised.value.reply.http_status) == ("after", 422)
    assert direct.cell("ledger").incarnation == 1
    assert ledger.ask(Read(stream="s", after=2**63 - 1)).records == []


def test_the_store_refuses_out_of_range_integers_with_a_typed_error(tmp_path):
    store = _ledger_store.LedgerStore(database_path(tmp_path, "ledger"))
    try:
        for call in (
            lambda: store.read("s", 2**63, 10),
            lambda: store.read("s", -1, 10),
            lambda: store.read("s", 0, 2**64),
            lambda: store.tail("s", 2**63),
            lambda: store.hash_at("s", 2**63),
        ):
            with pytest.raises(LedgerRangeError):
                call()
        assert store.read("s", 2**63 - 1, 1) == []
    finally:
        store.close()


def test_the_gateway_answers_422_and_publishes_the_bound(make_system, tmp_path):
    system = make_system(SPEC, data_dir=str(tmp_path))
    with serving(system) as client:
        answer = client.post("/v1/agents/ledger/Read", json={"stream": "s", "after": 2**63})
        assert answer.status_code == 422, answer.text
        assert "after" in answer.text
        schemas = client.get("/v1/openapi.json").json()["components"]["schemas"]
        read = next(s for name, s in schemas.items() if name.endswith("Read"))
        assert read["properties"]["after"]["maximum"] == 2**63 - 1
        assert client.post("/v1/agents/ledger/Read", json={"stream": "s"}).status_code == 200
    assert system.cell("ledger").incarnation == 1
