-- no-transaction
-- Two run statuses: `waiting` (a `delay` step holds the run until
-- `next_attempt_at`, like a retry) and `cancelled` (ended by a user). The status
-- CHECK can only change with its table, so `runs` is rebuilt by SQLite's
-- documented procedure (as in 0007): foreign keys off, outside of sqlx's
-- transaction, in one transaction of its own, then every index and trigger of
-- the table made again. Waiting runs share the index of retrying ones (both are
-- due at `next_attempt_at`); cancelled runs, few, get small partial indexes as
-- failed ones do.
PRAGMA foreign_keys = OFF;
BEGIN;

DROP TABLE IF EXISTS runs_rebuilt;
CREATE TABLE runs_rebuilt (
    id              TEXT PRIMARY KEY,
    recipe          TEXT NOT NULL,
    recipe_version  TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status = 'queued' OR status = 'running' OR status = 'retrying'
                                         OR status = 'succeeded' OR status = 'failed' OR status = 'skipped'
                                         OR status = 'waiting' OR status = 'cancelled'),
    replay_of       TEXT REFERENCES runs (id),
    received_at     TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    next_attempt_at TEXT,
    payload         TEXT NOT NULL,
    headers         TEXT NOT NULL,
    query           TEXT NOT NULL,
    error           TEXT
);
INSERT INTO runs_rebuilt (id, recipe, recipe_version, trigger, status, replay_of, received_at, started_at,
                          finished_at, next_attempt_at, payload, headers, query, error)
    SELECT id, recipe, recipe_version, trigger, status, replay_of, received_at, started_at,
           finished_at, next_attempt_at, payload, headers, query, error
    FROM runs;
DROP TABLE runs;
ALTER TABLE runs_rebuilt RENAME TO runs;

CREATE INDEX runs_by_recipe ON runs (recipe, id);
CREATE INDEX runs_waiting ON runs (next_attempt_at) WHERE status = 'retrying' OR status = 'waiting';
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX runs_replays ON runs (replay_of) WHERE replay_of IS NOT NULL;
CREATE INDEX runs_failed ON runs (id) WHERE status = 'failed';
CREATE INDEX runs_failed_by_recipe ON runs (recipe, id) WHERE status = 'failed';
CREATE INDEX runs_skipped ON runs (id) WHERE status = 'skipped';
CREATE INDEX runs_skipped_by_recipe ON runs (recipe, id) WHERE status = 'skipped';
CREATE INDEX runs_cancelled ON runs (id) WHERE status = 'cancelled';
CREATE INDEX runs_cancelled_by_recipe ON runs (recipe, id) WHERE status = 'cancelled';
CREATE INDEX runs_unfinished ON runs (status, id, recipe)
    WHERE status = 'queued' OR status = 'running' OR status = 'retrying' OR status = 'waiting';

CREATE TRIGGER run_counts_insert AFTER INSERT ON runs
BEGIN
    INSERT INTO run_counts (recipe, status, runs) VALUES (new.recipe, new.status, 1)
    ON CONFLICT (recipe, status) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER run_counts_status AFTER UPDATE OF status ON runs
WHEN old.status IS NOT new.status
BEGIN
    UPDATE run_counts SET runs = runs - 1 WHERE recipe = old.recipe AND status = old.status;
    INSERT INTO run_counts (recipe, status, runs) VALUES (new.recipe, new.status, 1)
    ON CONFLICT (recipe, status) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER run_counts_delete AFTER DELETE ON runs
BEGIN
    UPDATE run_counts SET runs = runs - 1 WHERE recipe = old.recipe AND status = old.status;
END;

-- The steps a recipe's `on_failure` runs are recorded in the same run, in a
-- section of their own.
ALTER TABLE steps ADD COLUMN on_failure INTEGER NOT NULL DEFAULT 0 CHECK (on_failure = 0 OR on_failure = 1);

-- Nothing may point nowhere after the rebuild.
CREATE TEMP TABLE IF NOT EXISTS rebuild_check (ok INTEGER NOT NULL CHECK (ok = 1));
INSERT INTO rebuild_check SELECT 0 FROM pragma_foreign_key_check LIMIT 1;
DROP TABLE rebuild_check;

COMMIT;
PRAGMA foreign_keys = ON;
