-- Cheaper writes to readings, measured on the 2-core development machine (bench/README.md):
-- the per-row foreign-key check to devices and the (device_id, ts DESC) index cost about 40 %
-- and 30 % of inserting a batch.
-- depends: 0004.dead-letter-codes-and-rollups

-- Readings still only name registered devices, kept by the two halves of what the foreign key did:
-- ingest locks the batch's devices (FOR KEY SHARE, as the foreign key's own check does) and
-- turns readings of a device that is gone into dead letters (ingest/writer.py), once per batch
-- instead of once per row; and a device that has readings cannot be deleted or renamed (below).
ALTER TABLE readings DROP CONSTRAINT IF EXISTS readings_device_id_fkey;

CREATE FUNCTION devices_keep_readings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM readings WHERE device_id = OLD.id) THEN
        RAISE EXCEPTION 'device % has readings; it cannot be deleted or renamed', OLD.id
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'delete its readings first';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER devices_keep_readings BEFORE DELETE OR UPDATE OF id ON devices
    FOR EACH ROW EXECUTE FUNCTION devices_keep_readings();

-- Every per-device read names its metrics, so the primary key (device_id, metric, ts) serves it.
DROP INDEX IF EXISTS readings_device_ts;
