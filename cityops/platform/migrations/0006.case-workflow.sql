-- The case workflow of digital urban management (GB/T 30428 / CJ/T 315): tickets become cases
-- from four sources, with the full state machine, time limits per stage, escalation up the grid
-- hierarchy, verification, ratings and the flood-season layer. docs/cases.md describes it.
-- depends: 0005.readings-lighter-writes

-- Roles: 12345 hotline operators and supervisors (verify handled cases on site). An operations or
-- supervisor user belongs to the district centre (cell_code NULL or the district) or to a
-- street centre (a street's code): escalations reach the centres by this.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN (
    'operations', 'grid_worker', 'civil_affairs', 'admin', 'hotline', 'supervisor'));
ALTER TABLE users ADD COLUMN cell_code char(15) REFERENCES grids (code);

-- A worker's last position, sent by the phone page: urgent cases go to the nearest worker.
ALTER TABLE workers ADD COLUMN last_lon double precision;
ALTER TABLE workers ADD COLUMN last_lat double precision;
ALTER TABLE workers ADD COLUMN position_at timestamptz;

-- States of the skeleton's tickets, renamed to the case workflow's.
UPDATE tickets SET status = CASE status
    WHEN 'new' THEN 'registered' WHEN 'acknowledged' THEN 'signed_for'
    WHEN 'arrived' THEN 'in_progress' WHEN 'resolved' THEN 'handled'
    WHEN 'cancelled' THEN 'voided' ELSE status END;
UPDATE ticket_events SET
    from_status = CASE from_status
        WHEN 'new' THEN 'registered' WHEN 'acknowledged' THEN 'signed_for'
        WHEN 'arrived' THEN 'in_progress' WHEN 'resolved' THEN 'handled'
        WHEN 'cancelled' THEN 'voided' ELSE from_status END,
    to_status = CASE to_status
        WHEN 'new' THEN 'registered' WHEN 'acknowledged' THEN 'signed_for'
        WHEN 'arrived' THEN 'in_progress' WHEN 'resolved' THEN 'handled'
        WHEN 'cancelled' THEN 'voided' ELSE to_status END;
ALTER TABLE tickets ADD CONSTRAINT tickets_status_check CHECK (status IN (
    'reported', 'accepted', 'voided', 'registered', 'dispatched', 'signed_for', 'in_progress',
    'handled', 'verified', 'closed', 'evaluated', 'returned', 'rework', 'postponed'));

-- category: the type letter (C component, E event: the standard numbers them apart) and the
-- 4-digit code, major 2 + minor 2, e.g. E0401 road waterlogging (cityops/data/case_categories.toml).
-- Earlier free-text categories become the codes the sensor alerts now use.
UPDATE tickets SET category = CASE category
    WHEN 'emergency.road_waterlogging' THEN 'E0401'
    WHEN 'facility.manhole_cover' THEN 'C0101'
    WHEN 'facility.sensor_fault' THEN 'C0109'
    WHEN 'care.elderly_welfare_check' THEN 'E0801'
    ELSE 'E9999' END;
ALTER TABLE tickets ADD CONSTRAINT tickets_category_check CHECK (category ~ '^[CE][0-9]{4}$');

ALTER TABLE tickets
    -- where the case came from: sensors (smart discovery), grid workers on patrol (active),
    -- citizens through Open311 and 12345 hotline calls (passive), the scheduler (inspections)
    ADD COLUMN source text NOT NULL DEFAULT 'sensor'
        CHECK (source IN ('sensor', 'patrol', 'citizen', 'hotline', 'scheduled')),
    ADD COLUMN call_type text
        CHECK (call_type IN ('consultation', 'help', 'suggestion', 'complaint', 'report')),
    ADD COLUMN address text,
    -- the reporter (citizen or caller): personal, never shown to grid workers nor published
    ADD COLUMN reporter_name text,
    ADD COLUMN reporter_phone text,
    ADD COLUMN reporter_email text,
    ADD COLUMN reported_by text,           -- the user who filed it (patrol worker, operator)
    ADD COLUMN unit text,                  -- responsible unit, from the minor category
    -- time limits of the stages: accept + register + dispatch; sign for (ack_due_at, as
    -- before); handling (due_at, as before). Working time unless urgent (clock time).
    ADD COLUMN dispatch_due_at timestamptz,
    ADD COLUMN handled_by text,
    ADD COLUMN handled_at timestamptz,
    ADD COLUMN verified_by text,
    ADD COLUMN verified_at timestamptz,
    ADD COLUMN duplicate_of bigint REFERENCES tickets (id),
    ADD COLUMN fixed_on_spot boolean NOT NULL DEFAULT false,
    ADD COLUMN key_site_id text;
ALTER TABLE tickets ALTER COLUMN status SET DEFAULT 'reported';
-- Duplicate linking looks for open cases of a category near a place and recent.
CREATE INDEX tickets_open_category ON tickets (category, created_at)
    WHERE status NOT IN ('voided', 'closed', 'evaluated');
CREATE INDEX tickets_duplicate_of ON tickets (duplicate_of) WHERE duplicate_of IS NOT NULL;

-- Events: every transition, and the other things that happen to a case.
ALTER TABLE ticket_events
    ADD COLUMN kind text NOT NULL DEFAULT 'transition' CHECK (kind IN (
        'transition', 'assignment', 'reminder', 'escalation', 'note', 'link', 'postponement',
        'rating', 'follow_up', 'appeal')),
    ADD COLUMN role text,
    ADD COLUMN photos bigint[] NOT NULL DEFAULT '{}';
UPDATE ticket_events SET kind = 'reminder' WHERE note LIKE 'reminder:%';

-- Photos of a case (filed with it, or with a transition); served only to signed-in users.
CREATE TABLE case_photos (
    id           bigserial PRIMARY KEY,
    ticket_id    bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    data         bytea NOT NULL CHECK (octet_length(data) <= 5242880),
    uploaded_by  text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_photos_ticket ON case_photos (ticket_id);

-- Escalation: one row per case, stage and step, inserted once (whoever inserts it notifies).
-- level 1: the worker; 2: the street centre; 3: the district centre.
CREATE TABLE case_escalations (
    ticket_id bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    stage     text NOT NULL CHECK (stage IN ('dispatch', 'sign', 'handle')),
    level     smallint NOT NULL CHECK (level BETWEEN 1 AND 3),
    cell_code char(15) REFERENCES grids (code),   -- the centre notified (levels 2 and 3)
    at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, stage, level)
);

-- Postponement: requested by the handler, approved or refused by operations.
CREATE TABLE case_postponements (
    id           bigserial PRIMARY KEY,
    ticket_id    bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    new_due_at   timestamptz NOT NULL,
    reason       text NOT NULL CHECK (reason <> ''),
    decided_by   text,
    decided_at   timestamptz,
    approved     boolean
);
CREATE UNIQUE INDEX case_postponements_one_pending ON case_postponements (ticket_id)
    WHERE decided_at IS NULL;

-- Ratings (好差评): 1-5 by the citizen or caller; 1 and 2 are bad reviews, followed up within
-- 5 working days and rated again (a new row); the handler's side may appeal a bad review.
CREATE TABLE case_ratings (
    id               bigserial PRIMARY KEY,
    ticket_id        bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    score            smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
    channel          text NOT NULL CHECK (channel IN ('hotline', 'open311', 'web')),
    comment          text NOT NULL DEFAULT '',
    recorded_by      text NOT NULL,
    at               timestamptz NOT NULL DEFAULT now(),
    follow_up_due_at timestamptz,          -- bad reviews only
    followed_up_at   timestamptz,
    followed_up_by   text,
    follow_up_note   text,
    appeal_status    text CHECK (appeal_status IN ('pending', 'upheld', 'overturned')),
    appeal_reason    text,
    appealed_by      text,
    appeal_decided_by text,
    appeal_decided_at timestamptz,
    CHECK ((score <= 2) = (follow_up_due_at IS NOT NULL))
);
CREATE INDEX case_ratings_ticket ON case_ratings (ticket_id, at);

-- Notifications: the outbox also carries webhook posts and messages to the centres.
ALTER TABLE dispatches ALTER COLUMN worker_id DROP NOT NULL;
ALTER TABLE dispatches ADD COLUMN channel text NOT NULL DEFAULT 'mqtt'
    CHECK (channel IN ('mqtt', 'webhook'));
DROP INDEX dispatches_unsent;
CREATE INDEX dispatches_unsent ON dispatches (channel, id) WHERE sent_at IS NULL;

-- Flood season: key sites (underpasses, low roads, basements), shelters and supply depots.
CREATE TABLE key_sites (
    id        text PRIMARY KEY,
    kind      text NOT NULL CHECK (kind IN ('underpass', 'low_road', 'basement', 'shelter', 'depot')),
    name      text NOT NULL,
    grid_code char(15) NOT NULL REFERENCES grids (code),
    lon       double precision NOT NULL,
    lat       double precision NOT NULL,
    capacity  integer,                      -- shelters: people; depots: not used
    notes     text NOT NULL DEFAULT ''
);
ALTER TABLE tickets ADD CONSTRAINT tickets_key_site FOREIGN KEY (key_site_id) REFERENCES key_sites (id);
