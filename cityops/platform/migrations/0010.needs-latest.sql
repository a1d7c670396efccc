-- Each household's latest needs assessment (the newest ``at``, then the highest id) in one table,
-- so the review list, the second look, the district summary and fairness join it by key instead
-- of each finding the latest row again among every assessment ever stored (docs/needs.md).
-- Kept current by statement-level triggers with transition tables, so a COPY of a whole scoring
-- run costs one set-based upsert, not a trigger call per row:
--   * INSERT (COPY or INSERT): each household's newest new row becomes its latest when it is later
--     than the stored one (an older assessment inserted afterwards does not);
--   * DELETE: the deleted latest row goes with ON DELETE CASCADE and the household is re-pointed
--     to its newest remaining assessment (none left: no row, as before it was ever assessed);
--   * UPDATE: the households of the old and the new rows are worked out again (a transition
--     table cannot go with a column list, so any update does; only household_id and at matter).
-- Nothing deletes assessments today (no retention), so the last two are for hand corrections.
-- depends: 0009.needs

CREATE TABLE needs_latest (
    household_id  text PRIMARY KEY REFERENCES households (id) ON DELETE CASCADE,
    assessment_id bigint NOT NULL REFERENCES needs_assessments (id) ON DELETE CASCADE,
    at            timestamptz NOT NULL
);
-- for ON DELETE CASCADE: deleting an assessment looks its household's row up by assessment
CREATE INDEX needs_latest_assessment ON needs_latest (assessment_id);

INSERT INTO needs_latest (household_id, assessment_id, at)
SELECT DISTINCT ON (household_id) household_id, id, at
FROM needs_assessments
ORDER BY household_id, at DESC, id DESC;

CREATE FUNCTION needs_latest_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO needs_latest AS l (household_id, assessment_id, at)
    SELECT DISTINCT ON (household_id) household_id, id, at
    FROM new_rows
    ORDER BY household_id, at DESC, id DESC
    ON CONFLICT (household_id) DO UPDATE
        SET assessment_id = excluded.assessment_id, at = excluded.at
        WHERE (excluded.at, excluded.assessment_id) > (l.at, l.assessment_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER needs_latest_insert AFTER INSERT ON needs_assessments
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION needs_latest_insert();

-- The households of the changed rows, worked out again from what remains in needs_assessments.
CREATE FUNCTION needs_latest_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM needs_latest l
    WHERE l.household_id IN (SELECT household_id FROM changed)
      AND NOT EXISTS (SELECT 1 FROM needs_assessments a WHERE a.household_id = l.household_id);
    INSERT INTO needs_latest AS l (household_id, assessment_id, at)
    SELECT DISTINCT ON (a.household_id) a.household_id, a.id, a.at
    FROM needs_assessments a
    WHERE a.household_id IN (SELECT household_id FROM changed)
    ORDER BY a.household_id, a.at DESC, a.id DESC
    ON CONFLICT (household_id) DO UPDATE
        SET assessment_id = excluded.assessment_id, at = excluded.at
        WHERE (l.assessment_id, l.at) IS DISTINCT FROM (excluded.assessment_id, excluded.at);
    RETURN NULL;
END
$$;

CREATE TRIGGER needs_latest_delete AFTER DELETE ON needs_assessments
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION needs_latest_refresh();
CREATE TRIGGER needs_latest_update_old AFTER UPDATE ON needs_assessments
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION needs_latest_refresh();
CREATE TRIGGER needs_latest_update_new AFTER UPDATE ON needs_assessments
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION needs_latest_refresh();
