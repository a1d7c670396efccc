-- A webhook receiver may refuse one message for good (HTTP 4xx: a malformed number, an unknown
-- recipient); that message is set aside with the answer instead of holding up every later one.
-- depends: 0007.case-metrics

ALTER TABLE dispatches ADD COLUMN refused_at timestamptz;
ALTER TABLE dispatches ADD COLUMN last_error text;
DROP INDEX dispatches_unsent;
CREATE INDEX dispatches_unsent ON dispatches (channel, id) WHERE sent_at IS NULL AND refused_at IS NULL;
