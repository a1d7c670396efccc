-- CityOps initial schema (plain PostgreSQL 15+; readings storage is in 0002)
-- depends:

-- Grid cells: district centre > street centres > responsibility grids > communities.
-- code: 15 digits = county(6) + street(3) + community(3) + sequence(3); see cityops/grids.py
CREATE TABLE grids (
    code        char(15) PRIMARY KEY CHECK (code ~ '^[0-9]{15}$'),
    level       text NOT NULL CHECK (level IN ('district', 'street', 'grid', 'community')),
    name        text NOT NULL,
    parent_code char(15) REFERENCES grids (code),
    geometry    jsonb NOT NULL,          -- GeoJSON Polygon/MultiPolygon, WGS84 lon/lat
    centroid_lon double precision NOT NULL,
    centroid_lat double precision NOT NULL,
    CHECK ((level = 'district') = (parent_code IS NULL))
);
CREATE INDEX grids_parent ON grids (parent_code);

-- Residents' households. name/phone/address are personal: civil-affairs staff only.
CREATE TABLE households (
    id             text PRIMARY KEY,
    community_code char(15) NOT NULL REFERENCES grids (code),
    head_name      text NOT NULL,
    phone          text,
    address        text NOT NULL,
    members        smallint NOT NULL CHECK (members > 0),
    elderly_alone  boolean NOT NULL DEFAULT false,
    birth_year     smallint,
    lon            double precision NOT NULL,
    lat            double precision NOT NULL
);
CREATE INDEX households_community ON households (community_code);

CREATE TABLE devices (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    kind        text NOT NULL CHECK (kind IN ('water_meter', 'flood_gauge', 'manhole_cover')),
    household_id text REFERENCES households (id),
    grid_code   char(15) NOT NULL REFERENCES grids (code),
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    label       text NOT NULL,           -- public description: "Flood gauge, Xizang Rd underpass"
    config      jsonb NOT NULL DEFAULT '{}'::jsonb,   -- per-device thresholds
    installed_at timestamptz NOT NULL DEFAULT now(),
    online      boolean,                 -- from status messages / last will; NULL = never heard
    status_at   timestamptz,
    last_seen   timestamptz,
    battery_pct real
);
CREATE INDEX devices_kind ON devices (kind);
CREATE INDEX devices_grid ON devices (grid_code);

CREATE TABLE cameras (
    id        text PRIMARY KEY,
    grid_code char(15) NOT NULL REFERENCES grids (code),
    label     text NOT NULL,
    lon       double precision NOT NULL,
    lat       double precision NOT NULL,
    stream_url text
);

-- A message that failed decoding or validation: kept whole, with the reason.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    reason      text NOT NULL,
    device_id   text
);
CREATE INDEX dead_letters_received ON dead_letters (received_at);
CREATE INDEX dead_letters_device ON dead_letters (device_id, received_at);

-- Users and roles (operations, grid_worker, civil_affairs, admin).
CREATE TABLE users (
    username      text PRIMARY KEY CHECK (username ~ '^[a-z0-9_.-]{2,64}$'),
    display_name  text NOT NULL,
    role          text NOT NULL CHECK (role IN ('operations', 'grid_worker', 'civil_affairs', 'admin')),
    password_hash text NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workers (
    id        text PRIMARY KEY,
    name      text NOT NULL,
    phone     text,
    cell_code char(15) NOT NULL REFERENCES grids (code),
    username  text UNIQUE REFERENCES users (username),
    active    boolean NOT NULL DEFAULT true
);
CREATE INDEX workers_cell ON workers (cell_code);

-- Recurring weekly roster in the district's local time; ends < starts means the shift crosses
-- midnight (a night shift starting on `weekday`). weekday: 1 = Monday ... 7 = Sunday (ISO).
CREATE TABLE shifts (
    id       bigserial PRIMARY KEY,
    worker_id text NOT NULL REFERENCES workers (id) ON DELETE CASCADE,
    weekday  smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    starts   time NOT NULL,
    ends     time NOT NULL,
    CHECK (starts <> ends)
);
CREATE INDEX shifts_worker ON shifts (worker_id);

CREATE TABLE alerts (
    id          bigserial PRIMARY KEY,
    source_id   text NOT NULL,           -- the device (or other source) the alert is about
    kind        text NOT NULL,           -- flood_depth, manhole_tilt, water_silence, water_running ...
    severity    text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    message     text NOT NULL,           -- a plain sentence a grid worker understands
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    grid_code   char(15) REFERENCES grids (code),
    lon         double precision,
    lat         double precision,
    first_seen  timestamptz NOT NULL,    -- time of the reading that opened it
    last_seen   timestamptz NOT NULL,    -- time of the latest reading that repeated it
    occurrences integer NOT NULL DEFAULT 1,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    resolved_at timestamptz
);
-- At most one unresolved alert per source and kind, whoever writes it: a repeat updates it.
CREATE UNIQUE INDEX alerts_one_open ON alerts (source_id, kind) WHERE status <> 'resolved';
CREATE INDEX alerts_status ON alerts (status, opened_at DESC);

CREATE TABLE tickets (
    id          bigserial PRIMARY KEY,
    alert_id    bigint UNIQUE REFERENCES alerts (id),
    title       text NOT NULL,
    description text NOT NULL,
    category    text NOT NULL,
    priority    text NOT NULL CHECK (priority IN ('urgent', 'normal', 'low')),
    status      text NOT NULL,
    grid_code   char(15) REFERENCES grids (code),
    worker_id   text REFERENCES workers (id),
    assigned_reason text,
    lon         double precision,
    lat         double precision,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    ack_due_at  timestamptz,
    due_at      timestamptz,
    closed_at   timestamptz
);
CREATE INDEX tickets_status ON tickets (status, created_at DESC);
CREATE INDEX tickets_worker ON tickets (worker_id, status);
CREATE INDEX tickets_grid ON tickets (grid_code);

-- Every state change of a ticket: who, when, from, to, why.
CREATE TABLE ticket_events (
    id          bigserial PRIMARY KEY,
    ticket_id   bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    note        text NOT NULL DEFAULT ''
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, at);

-- Outbox of notifications to workers: written with the ticket, sent over MQTT afterwards.
CREATE TABLE dispatches (
    id         bigserial PRIMARY KEY,
    ticket_id  bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    worker_id  text NOT NULL REFERENCES workers (id),
    topic      text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    attempts   integer NOT NULL DEFAULT 0
);
CREATE INDEX dispatches_unsent ON dispatches (id) WHERE sent_at IS NULL;

CREATE TABLE audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    username text NOT NULL,
    action   text NOT NULL,
    subject  text NOT NULL,
    details  jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);

-- A periodic job claims its period here so it runs once cluster-wide.
CREATE TABLE job_claims (
    job        text NOT NULL,
    period     timestamptz NOT NULL,
    claimed_by text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, period)
);

-- Ground truth of incidents the simulator injected, so detection can be scored.
CREATE TABLE sim_incidents (
    id        bigserial PRIMARY KEY,
    kind      text NOT NULL,
    device_id text NOT NULL REFERENCES devices (id),
    starts_at timestamptz NOT NULL,
    ends_at   timestamptz NOT NULL,
    details   jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Key/value facts about this installation (district seed, storage engine, ...).
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value jsonb NOT NULL
);
