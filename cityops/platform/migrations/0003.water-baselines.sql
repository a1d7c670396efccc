-- Water use of elderly people living alone: each meter's hourly history (the input of its
-- baseline, refreshed by the scheduler) and households marked away or in hospital.
-- depends: 0002.readings-storage

-- Litres used in each local hour over the last weeks, one row per water meter. litres[1] is the
-- hour ending at first_hour_end, litres[k] the hour ending (k - 1) hours later; NULL where the
-- meter reported nothing in that hour. The detectors fit the household's baseline from it.
CREATE TABLE water_history (
    device_id      text PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    first_hour_end timestamptz NOT NULL,
    litres         double precision[] NOT NULL,
    computed_at    timestamptz NOT NULL
);

-- A household marked away or in hospital until a date: no water-use alerts open for it while
-- the mark lasts (set by grid workers and civil-affairs staff; ended early when they are back).
CREATE TABLE household_absences (
    id           bigserial PRIMARY KEY,
    household_id text NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    reason       text NOT NULL CHECK (reason IN ('away', 'hospital')),
    starts_at    timestamptz NOT NULL,
    until        timestamptz NOT NULL,
    set_by       text NOT NULL,
    note         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz,
    ended_by     text,
    CHECK (until > starts_at)
);
CREATE INDEX household_absences_household ON household_absences (household_id, until);
CREATE INDEX household_absences_until ON household_absences (until);
