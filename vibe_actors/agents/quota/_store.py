"""The quota agent's buckets in a shared PostgreSQL database: one bucket for every replica.

One row per bucket (``key``: the limit and the principal/agent it counts, see
:func:`bucket_key`), holding its ``tokens`` at ``updated_at`` and the time it
is ``full_at`` again. An acquire is one statement, ``SELECT * FROM
acquire(...)``, running the function created by the migration below in its
own transaction: it locks every bucket of the acquire (an upsert, in key
order, so two acquires never deadlock), refills each by the database's clock
(``clock_timestamp()``, read once the locks are held: every replica uses the
same clock, and a replica that waited for a lock refills from the time it got
it), and takes ``cost`` from all of them or from none. Replicas therefore
share one bucket per key, and together they are granted at most ``burst +
rate * elapsed``.

The table is ``UNLOGGED``: a bucket level is not worth a WAL flush per
request, and after a crash of the database server (which empties unlogged
tables) every bucket starts full, as it does after a restart of the agent.
A bucket full again is indistinguishable from an absent one, so the
:meth:`QuotaStore.sweep` deletes rows past ``full_at``: the table holds only
the buckets spent within their refill time, however many principals ``"*"``
limits meet.

SQLite (the default, one process) has no table here: the agent keeps its
buckets in memory (:class:`~vibe_actors.agents.quota.QuotaBuckets`).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from vibe_actors.agents.quota.protocol import Limit
from vibe_actors.store import Schema, Store

__all__ = ["QuotaStore", "bucket_key"]

#: The rows of one sweep at most (a sweep runs again at the next interval).
SWEEP_BATCH = 10_000

#: Never used: the agent keeps SQLite's buckets in memory (see the module docstring).
_SQLITE = """
CREATE TABLE IF NOT EXISTS buckets (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_at REAL NOT NULL,
    full_at REAL NOT NULL
) WITHOUT ROWID;
"""

#: Migration 1. ``acquire`` returns the wait of each bucket (0: enough tokens) and, when
#: every wait is 0 and the cost was taken, the tokens left in the tightest bucket.
POSTGRES_V1 = """
CREATE UNLOGGED TABLE buckets (
    key TEXT COLLATE "C" PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    full_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX buckets_by_full_at ON buckets (full_at);
CREATE FUNCTION acquire(
    keys TEXT[], rates DOUBLE PRECISION[], bursts DOUBLE PRECISION[],
    cost DOUBLE PRECISION, epsilon DOUBLE PRECISION
) RETURNS TABLE (waits DOUBLE PRECISION[], remaining DOUBLE PRECISION)
LANGUAGE plpgsql AS $$
DECLARE
    n INTEGER := cardinality(keys);
    levels DOUBLE PRECISION[] := '{}';
    stamps DOUBLE PRECISION[] := '{}';
    level DOUBLE PRECISION;
    last DOUBLE PRECISION;
    stamp DOUBLE PRECISION;
    short DOUBLE PRECISION;
    i INTEGER;
BEGIN
    FOR i IN 1 .. n LOOP
        INSERT INTO buckets AS b (key, tokens, updated_at, full_at)
            VALUES (keys[i], bursts[i], 0, 0)
            ON CONFLICT (key) DO UPDATE SET tokens = b.tokens
            RETURNING b.tokens, b.updated_at INTO level, last;
        levels := levels || level;
        stamps := stamps || last;
    END LOOP;
    stamp := extract(epoch FROM clock_timestamp());
    waits := '{}';
    FOR i IN 1 .. n LOOP
        level := least(bursts[i], levels[i] + greatest(0, stamp - stamps[i]) * rates[i]);
        levels[i] := level;
        short := cost - level;
        waits := waits || CASE WHEN short <= epsilon * greatest(1, cost) THEN 0
                               ELSE short / rates[i] END;
    END LOOP;
    IF EXISTS (SELECT 1 FROM unnest(waits) AS w WHERE w > 0) THEN
        remaining := NULL;
        RETURN NEXT;
        RETURN;
    END IF;
    FOR i IN 1 .. n LOOP
        level := greatest(0, levels[i] - cost);
        last := greatest(stamps[i], stamp);
        UPDATE buckets SET tokens = level, updated_at = last,
                           full_at = last + (bursts[i] - level) / rates[i]
            WHERE key = keys[i];
        remaining := least(remaining, level);
    END LOOP;
    RETURN NEXT;
END
$$;
"""


def bucket_key(limit: Limit, principal: str | None, agent: str | None) -> str:
    """The row of ``limit``'s bucket for ``principal`` and ``agent`` (None: not a dimension).

    The limit's whole definition is part of the key: replicas running different
    configurations (a rolling update) never share a bucket of different limits, and
    a changed limit starts with a new, full bucket.
    """
    return msgspec.json.encode(
        [limit.principal, limit.agent, limit.rate, limit.burst, principal, agent]
    ).decode()


class QuotaStore(Store):
    """The shared buckets of one quota agent; used from the agent's thread only."""

    schema = Schema(_SQLITE, postgres=(POSTGRES_V1,))

    def acquire(
        self,
        keys: Sequence[str],
        rates: Sequence[float],
        bursts: Sequence[float],
        cost: float,
        epsilon: float,
    ) -> tuple[list[float], float | None]:
        """Take ``cost`` from every bucket ``keys`` (sorted), or from none: the wait of
        each (all 0: taken) and the tokens left in the tightest. Raises StoreError."""
        row = self._db.execute(
            "SELECT waits, remaining FROM acquire(?::text[], ?::float8[], ?::float8[], ?, ?)",
            (list(keys), [float(r) for r in rates], [float(b) for b in bursts], cost, epsilon),
        ).fetchone()
        return [float(w) for w in row[0]], (None if row[1] is None else float(row[1]))

    def sweep(self) -> int:
        """Delete buckets full again (as good as absent); returns how many. Raises StoreError."""
        return self._db.execute(
            "DELETE FROM buckets WHERE key IN (SELECT key FROM buckets"
            " WHERE full_at <= extract(epoch FROM clock_timestamp())"
            " ORDER BY key LIMIT ? FOR UPDATE SKIP LOCKED)",
            (SWEEP_BATCH,),
        ).rowcount

    def count(self) -> int:
        """Buckets held now. Raises StoreError."""
        return int(self._db.execute("SELECT count(*) FROM buckets").fetchone()[0])
