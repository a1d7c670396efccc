-- Dead letters get a short machine code beside the reason; hourly rollups of readings.
-- depends: 0002.readings-storage

-- The rejection code (unknown_device, unknown_unit, out_of_range, ...; see docs/payloads.md).
-- Rows stored before this migration have no code of their own.
ALTER TABLE dead_letters ADD COLUMN code text NOT NULL DEFAULT 'unclassified';
CREATE INDEX dead_letters_code ON dead_letters (received_at, code);

-- One row per device, metric and UTC hour: kept longer than the raw readings, feeds the models.
CREATE TABLE readings_hourly (
    device_id text NOT NULL REFERENCES devices (id),
    metric    text NOT NULL,
    hour      timestamptz NOT NULL,
    count     integer NOT NULL,
    sum       double precision NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    last      double precision NOT NULL,   -- the value of the latest reading of the hour
    PRIMARY KEY (device_id, metric, hour)
);
CREATE INDEX readings_hourly_hour ON readings_hourly USING brin (hour);

-- Hours that received new readings since the rollup job last ran. Ingest appends (no key, so
-- concurrent writers never wait on each other); the job deletes what it has rolled up.
CREATE TABLE readings_dirty_hours (
    hour timestamptz NOT NULL
);
