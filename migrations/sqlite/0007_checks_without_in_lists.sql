-- no-transaction
-- The status CHECKs as chains of `=` instead of `IN (…)` lists. SQLite builds an
-- `IN` list's lookup table (an ephemeral index, one insert per value) again for
-- every row it checks: for a run, at its insert, its step's insert and every
-- status change — about a sixth of the writer's work per run. Same rule, no
-- table. A CHECK can only change with its table, so `runs` and `steps` are
-- rebuilt (SQLite's documented procedure: foreign keys off, outside of sqlx's
-- transaction, in one transaction of its own). Run again after a crash between
-- its commit and sqlx's bookkeeping, it rebuilds the same tables once more.
PRAGMA foreign_keys = OFF;
BEGIN;

DROP TABLE IF EXISTS runs_rebuilt;
CREATE TABLE runs_rebuilt (
    id              TEXT PRIMARY KEY,
    recipe          TEXT NOT NULL,
    recipe_version  TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status = 'queued' OR status = 'running' OR status = 'retrying'
                                         OR status = 'succeeded' OR status = 'failed' OR status = 'skipped'),
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
CREATE INDEX runs_by_status ON runs (status, id);
CREATE INDEX runs_by_recipe ON runs (recipe, id);
CREATE INDEX runs_waiting ON runs (next_attempt_at) WHERE status = 'retrying';
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX runs_replays ON runs (replay_of) WHERE replay_of IS NOT NULL;

DROP TABLE IF EXISTS steps_rebuilt;
CREATE TABLE steps_rebuilt (
    run_id    TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    step_id   TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status = 'running' OR status = 'retrying' OR status = 'succeeded'
                                   OR status = 'failed' OR status = 'skipped'),
    request   TEXT,
    result    TEXT,
    PRIMARY KEY (run_id, position)
);
INSERT INTO steps_rebuilt (run_id, position, step_id, status, request, result)
    SELECT run_id, position, step_id, status, request, result FROM steps;
DROP TABLE steps;
ALTER TABLE steps_rebuilt RENAME TO steps;

-- Nothing may point nowhere after the rebuild.
CREATE TEMP TABLE IF NOT EXISTS rebuild_check (ok INTEGER NOT NULL CHECK (ok = 1));
INSERT INTO rebuild_check SELECT 0 FROM pragma_foreign_key_check LIMIT 1;
DROP TABLE rebuild_check;

COMMIT;
PRAGMA foreign_keys = ON;
