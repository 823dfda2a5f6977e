-- Fewer pages per commit. A commit writes every page it changed, whole, to the
-- WAL; under load a batch holds a few runs, so what it costs is mostly how many
-- b-trees it touches, not how many rows. Two of them go:
--
-- `runs_by_status` held every run, so a run that ended moved its entry from the
-- `running` part of the index to the `succeeded` part: three places in the
-- index per batch. Only the runs still to do are looked up by status (the
-- dispatcher, the queue figures, recovery), so the index holds just those: it
-- stays a few pages, the same ones batch after batch.
DROP INDEX runs_by_status;
CREATE INDEX runs_unfinished ON runs (status, id)
    WHERE status = 'queued' OR status = 'running' OR status = 'retrying';

-- `steps` was a rowid table plus the index of its primary key: two b-trees for
-- one lookup. Keyed by its primary key alone it is one.
CREATE TABLE steps_keyed (
    run_id    TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    step_id   TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status = 'running' OR status = 'retrying' OR status = 'succeeded'
                                   OR status = 'failed' OR status = 'skipped'),
    request   TEXT,
    result    TEXT,
    PRIMARY KEY (run_id, position)
) WITHOUT ROWID;
INSERT INTO steps_keyed (run_id, position, step_id, status, request, result)
    SELECT run_id, position, step_id, status, request, result FROM steps;
DROP TABLE steps;
ALTER TABLE steps_keyed RENAME TO steps;
