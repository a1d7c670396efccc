"""Readings storage: a TimescaleDB hypertable when the extension is available, else plain
PostgreSQL with a BRIN index on time. Same columns and natural key on both paths."""

from yoyo import step

__depends__ = {"0001.initial-schema"}

READINGS = """
CREATE TABLE readings (
    device_id   text NOT NULL REFERENCES devices (id),
    metric      text NOT NULL,
    ts          timestamptz NOT NULL,
    value       double precision NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, metric, ts)
)
"""


def timescale_available(cursor) -> bool:
    """True when the timescaledb extension is installed or can be created in this database."""
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    return cursor.fetchone() is not None


def apply_step(conn):
    cursor = conn.cursor()
    if timescale_available(cursor):
        cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        cursor.execute(READINGS)
        cursor.execute(
            "SELECT create_hypertable('readings', 'ts', chunk_time_interval => interval '1 day')"
        )
        engine = "timescaledb"
    else:
        cursor.execute(READINGS)
        cursor.execute("CREATE INDEX readings_ts_brin ON readings USING brin (ts)")
        engine = "postgresql"
    cursor.execute("CREATE INDEX readings_device_ts ON readings (device_id, ts DESC)")
    cursor.execute(
        "INSERT INTO meta (key, value) VALUES ('readings_engine', to_jsonb(%s::text))"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (engine,),
    )


def rollback_step(conn):
    cursor = conn.cursor()
    cursor.execute("DROP TABLE readings")
    cursor.execute("DELETE FROM meta WHERE key = 'readings_engine'")


steps = [step(apply_step, rollback_step)]
