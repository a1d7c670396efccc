-- Case metrics (cityops/case_metrics.py, docs/cases.md "Metrics") read the cases reported in a
-- period, then their events and approved postponements: without these indexes a period of a
-- week scans every ticket and every postponement (bench/case_metrics.py has the figures).
-- depends: 0006.case-workflow

CREATE INDEX tickets_created_at ON tickets (created_at);
CREATE INDEX case_postponements_approved ON case_postponements (ticket_id) WHERE approved;
