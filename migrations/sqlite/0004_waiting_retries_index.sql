-- Only retrying runs wait for a time: a partial index holds just those, so the
-- status changes of every other run (queued → running → succeeded) no longer
-- move entries in an index of every run.
DROP INDEX runs_due;
CREATE INDEX runs_waiting ON runs (next_attempt_at) WHERE status = 'retrying';
