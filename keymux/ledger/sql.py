"""The ledger's SQL, for SQLite and PostgreSQL alike: epoch seconds as numbers, no date functions.

Migrations are numbered; `schema_version` holds the highest applied. Add a migration, never edit one.
"""

from __future__ import annotations

import functools

from keymux.ledger.row import ATTEMPT_COLUMNS, COLUMNS


def _ddl(real: str, big: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS requests (
            id TEXT PRIMARY KEY, at {real} NOT NULL, sec {big} NOT NULL, request_id TEXT, surface TEXT,
            client TEXT, grp TEXT, key TEXT, upstream_model TEXT, status INTEGER, outcome TEXT, attempts TEXT,
            n_attempts INTEGER, prompt_tokens {big}, completion_tokens {big}, reasoning_tokens {big},
            total_tokens {big}, cost {real}, value {real}, free_tier INTEGER, latency {real}, ttfb {real},
            stream INTEGER, detail TEXT)""",
        "CREATE INDEX IF NOT EXISTS requests_at ON requests (at)",
        "CREATE INDEX IF NOT EXISTS requests_key_at ON requests (key, at)",
        f"""CREATE TABLE IF NOT EXISTS attempts (
            row_id TEXT NOT NULL, seq INTEGER NOT NULL, at {real} NOT NULL, key TEXT, outcome TEXT,
            PRIMARY KEY (row_id, seq))""",
        "CREATE INDEX IF NOT EXISTS attempts_key_at ON attempts (key, at)",
        f"""CREATE TABLE IF NOT EXISTS runtime_keys (
            id TEXT PRIMARY KEY, grp TEXT NOT NULL, fingerprint TEXT NOT NULL, provider TEXT NOT NULL,
            model TEXT NOT NULL, api_key TEXT NOT NULL, api_base TEXT, project TEXT, params TEXT NOT NULL,
            created {real} NOT NULL)""",
    ]


def _queue_wait(real: str) -> list[str]:
    return [f"ALTER TABLE requests ADD COLUMN queue_wait {real}"]  # seconds queued for a key; NULL: before v2


def _disables(real: str) -> list[str]:
    # Keys an operator disabled (POST /admin/keys/{fp}/disable): re-applied at start, until enabled.
    return [f"CREATE TABLE IF NOT EXISTS key_disables (fingerprint TEXT PRIMARY KEY, reason TEXT NOT NULL, "
            f"at {real} NOT NULL)"]


def _modal_cost() -> list[str]:
    # JSON {"output_image": USD, "input_audio": USD}: what tokens priced at their modality's rate cost
    return ["ALTER TABLE requests ADD COLUMN modal_cost TEXT"]


def _gateway_clients(real: str) -> list[str]:
    # Gateway keys made by the admin API (keymux/clients): one JSON document each, holding the key's hash only.
    return [f"CREATE TABLE IF NOT EXISTS gateway_clients (name TEXT PRIMARY KEY, doc TEXT NOT NULL, "
            f"updated {real} NOT NULL)"]


def _operation() -> list[str]:
    # What the client asked for: chat, embeddings, images, speech, transcriptions, a Gemini method. NULL: before v6.
    return ["ALTER TABLE requests ADD COLUMN operation TEXT"]


MIGRATIONS: dict[str, list[tuple[int, list[str]]]] = {
    "sqlite": [(1, _ddl("REAL", "INTEGER")), (2, _queue_wait("REAL")), (3, _disables("REAL")),
               (4, _modal_cost()), (5, _gateway_clients("REAL")), (6, _operation())],
    "postgres": [(1, _ddl("DOUBLE PRECISION", "BIGINT")), (2, _queue_wait("DOUBLE PRECISION")),
                 (3, _disables("DOUBLE PRECISION")), (4, _modal_cost()), (5, _gateway_clients("DOUBLE PRECISION")),
                 (6, _operation())],
}
SCHEMA_VERSION = max(v for v, _ in MIGRATIONS["sqlite"])

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


def insert_requests() -> str:
    """PostgreSQL (executemany); SQLite uses insert_rows."""
    return _insert("requests", COLUMNS)


def insert_attempts() -> str:
    return _insert("attempts", ATTEMPT_COLUMNS)


def _insert(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"


@functools.lru_cache(maxsize=64)
def insert_rows(table: str, columns: tuple[str, ...], n: int) -> str:
    """SQLite: one statement inserting `n` rows. executemany steps once per row, and every step hands the
    GIL back and forth with the event loop (measured: the writer thread then chased the buffer in small,
    slow transactions); one statement per chunk steps once."""
    one = f"({', '.join('?' * len(columns))})"
    return f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * n)}"


def numbered(sql: str) -> str:
    """`?` placeholders -> `$1, $2, ...` (PostgreSQL)."""
    out, n = [], 0
    for part in sql.split("?"):
        out.append(part)
        n += 1
        out.append(f"${n}")
    return "".join(out[:-1])


DIMENSIONS = {"key": "key", "group": "grp", "client": "client", "model": "upstream_model", "surface": "surface",
              "operation": "operation"}
BUCKETS = {"minute": 60, "hour": 3600, "day": 86400}

_SUMS = ("count(*), sum(CASE WHEN outcome IN ('ok', 'cache_hit') THEN 0 ELSE 1 END), sum(prompt_tokens), sum(completion_tokens), "
         "sum(reasoning_tokens), sum(total_tokens), sum(cost), sum(value)")
SUM_NAMES = ("requests", "errors", "prompt_tokens", "completion_tokens", "reasoning_tokens", "total_tokens",
             "cost", "value")


# `/admin/usage?metrics=outcomes`: requests per outcome class. A request can be both rate_limited (an attempt
# met a 429, then another key answered) and ok; the other classes are disjoint.
QUEUED_MIN = 0.01  # seconds: a request that waited at least this long for a key counts as queued
OUTCOME_CLASSES = (
    ("ok", "outcome IN ('ok', 'cache_hit')"),
    ("rate_limited", ("EXISTS (SELECT 1 FROM attempts a WHERE a.row_id = requests.id "
                      "AND a.outcome IN ('rate_limited', 'daily_exhausted', 'backoff'))")),
    ("queued", f"queue_wait >= {QUEUED_MIN}"),
    ("refused", "outcome = 'refused'"),
    ("error", "outcome IN ('failed', 'broken')"),
    ("client_error", "outcome = 'client_error'"),
)
OUTCOME_NAMES = tuple(name for name, _ in OUTCOME_CLASSES)
# `/admin/usage?metrics=latency`: nearest-rank percentiles, computed in the database (window functions).
PERCENTILES = (50, 95)
LATENCY_COLUMNS = ("latency", "queue_wait")
LATENCY_NAMES = tuple(f"{c}_p{p}" for c in LATENCY_COLUMNS for p in PERCENTILES) + ("queue_wait_max",)


def _keys(by: str | None, bucket: str | None) -> list[str]:
    keys = []
    if by is not None:
        keys.append(DIMENSIONS[by])
    if bucket is not None:
        b = BUCKETS[bucket]
        keys.append(f"(sec - sec % {b})")
    return keys


def usage_sql(by: str | None, bucket: str | None, outcomes: bool = False) -> str:
    group = _keys(by, bucket)
    sums = [_SUMS] + ([f"sum(CASE WHEN {cond} THEN 1 ELSE 0 END)" for _, cond in OUTCOME_CLASSES] if outcomes else [])
    head = ", ".join(group + sums)
    tail = f" GROUP BY {', '.join(group)} ORDER BY {', '.join(group)}" if group else ""
    return f"SELECT {head} FROM requests WHERE at >= ? AND at < ?{tail}"


def percentile_sql(column: str, by: str | None, bucket: str | None) -> str:
    """Per (by, bucket): the p50 / p95 / max of `column` (nearest rank: the ceil(p*n)-th smallest)."""
    assert column in LATENCY_COLUMNS
    keys = _keys(by, bucket)
    names = [f"k{i}" for i in range(len(keys))]
    partition = f"PARTITION BY {', '.join(keys)} " if keys else ""
    inner = ", ".join([f"{k} AS {n}" for k, n in zip(keys, names)] + [
        f"{column} AS v", f"row_number() OVER ({partition}ORDER BY {column}) AS rn",
        f"count(*) OVER ({partition.strip()}) AS n"])
    picks = [f"max(CASE WHEN rn = ({p} * n + 99) / 100 THEN v END)" for p in PERCENTILES] + ["max(v)"]
    tail = f" GROUP BY {', '.join(names)}" if names else ""
    return (f"SELECT {', '.join(names + picks)} FROM (SELECT {inner} FROM requests "
            f"WHERE at >= ? AND at < ? AND {column} IS NOT NULL) t{tail}")


KEY_TOTALS = ("SELECT key, count(*), sum(total_tokens), sum(cost), sum(value) FROM requests "
              "WHERE at >= ? AND key IS NOT NULL GROUP BY key")
KEY_ERRORS = ("SELECT key, count(*) FROM attempts WHERE at >= ? AND outcome NOT IN ('ok', 'client_error') "
              "GROUP BY key")
RECENT = f"SELECT {', '.join(COLUMNS)} FROM requests WHERE at < ? ORDER BY at DESC, id LIMIT ?"
COUNT = "SELECT count(*), sum(total_tokens), sum(cost) FROM requests"

KEY_COLUMNS = ("id", "grp", "fingerprint", "provider", "model", "api_key", "api_base", "project", "params", "created")
LIST_KEYS = f"SELECT {', '.join(KEY_COLUMNS)} FROM runtime_keys ORDER BY created, id"
ADD_KEY = f"INSERT INTO runtime_keys ({', '.join(KEY_COLUMNS)}) VALUES ({', '.join('?' * len(KEY_COLUMNS))})"
DELETE_KEY = "DELETE FROM runtime_keys WHERE fingerprint = ?"
ENCRYPT_KEY = "UPDATE runtime_keys SET api_key = ? WHERE id = ?"  # a plain-text row from before encryption

LIST_DISABLES = "SELECT fingerprint, reason FROM key_disables ORDER BY at, fingerprint"
SET_DISABLE = ("INSERT INTO key_disables (fingerprint, reason, at) VALUES (?, ?, ?) "
               "ON CONFLICT (fingerprint) DO UPDATE SET reason = excluded.reason, at = excluded.at")
CLEAR_DISABLE = "DELETE FROM key_disables WHERE fingerprint = ?"
LIST_CLIENTS = "SELECT doc FROM gateway_clients ORDER BY name"
SAVE_CLIENT = ("INSERT INTO gateway_clients (name, doc, updated) VALUES (?, ?, ?) "
               "ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, updated = excluded.updated")
DELETE_CLIENT = "DELETE FROM gateway_clients WHERE name = ?"
CLIENT_SPEND = ("SELECT client, sum(cost) FROM requests WHERE at >= ? AND client = ? GROUP BY client")
