"""GroupCommit: one transaction per batch, every write answered once, after its commit."""

from __future__ import annotations

from typing import Any

import pytest

from vibe_actors.store import BatchNotCommitted, GroupCommit, StoreError, StoreRejected


class Ack:
    def __init__(self, log: list[str]) -> None:
        self.replies: list[Any] = []
        self._log = log

    def resolve(self, reply: Any) -> None:
        self._log.append(f"answered {reply}")
        self.replies.append(reply)


def test_a_batch_commits_in_one_transaction_then_every_write_is_acknowledged() -> None:
    log: list[str] = []
    batch: GroupCommit[int] = GroupCommit(lambda n: f"ok {n}", lambda error, writes: "refused")
    acks = [Ack(log) for _ in range(3)]
    assert batch.submit(1, acks[0]) is True  # it opened the batch
    assert batch.submit(2, acks[1]) is False
    assert batch.submit(3, acks[2]) is False
    assert batch.submit(4) is False  # nobody waits for this one
    assert len(batch) == 4 and list(batch.pending) == [1, 2, 3, 4]

    def transaction(writes: list[int]) -> None:
        log.append(f"transaction {writes}")

    assert batch.commit(transaction) == [1, 2, 3, 4]
    assert log == ["transaction [1, 2, 3, 4]", "answered ok 1", "answered ok 2", "answered ok 3"]
    assert [a.replies for a in acks] == [["ok 1"], ["ok 2"], ["ok 3"]]
    assert len(batch) == 0 and batch.commit(transaction) == []
    assert log.count("transaction [1, 2, 3, 4]") == 1  # an empty batch runs no transaction


@pytest.mark.parametrize(
    "error", [StoreError("db", "disk full"), StoreRejected("db", "constraint")]
)
def test_a_failed_commit_answers_every_write_with_the_typed_reply_then_raises(
    error: StoreError | StoreRejected,
) -> None:
    log: list[str] = []
    seen: list[tuple[Any, list[int]]] = []

    def refuse(failure: StoreError | StoreRejected, writes: list[int]) -> str:
        seen.append((failure, writes))
        log.append("refused")
        return "not stored"

    batch: GroupCommit[int] = GroupCommit(lambda n: f"ok {n}", refuse)
    acks = [Ack(log), Ack(log)]
    batch.submit(1, acks[0])
    batch.submit(2, acks[1])

    def transaction(writes: list[int]) -> None:
        raise error

    with pytest.raises(BatchNotCommitted) as raised:
        batch.commit(transaction)
    assert raised.value.error is error and raised.value.__cause__ is error
    assert raised.value.writes == [1, 2] and raised.value.reply == "not stored"
    assert seen == [(error, [1, 2])]
    assert log == ["refused", "answered not stored", "answered not stored"]  # refused first
    assert len(batch) == 0


def test_an_unforeseen_exception_leaves_the_batch_pending_for_abandon() -> None:
    log: list[str] = []
    batch: GroupCommit[int] = GroupCommit(lambda n: f"ok {n}", lambda error, writes: "refused")
    first, later = Ack(log), Ack(log)
    batch.submit(1, first)

    def transaction(writes: list[int]) -> None:
        batch.submit(2, later)  # submitted while the first batch was being written
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        batch.commit(transaction)
    assert log == [] and list(batch.pending) == [1, 2]  # unanswered, in submission order
    assert batch.abandon("crashed") == 2
    assert first.replies == ["crashed"] and later.replies == ["crashed"]
    assert len(batch) == 0 and batch.abandon("again") == 0
