-- Runs, their steps and every attempt of every step.
-- Timestamps are RFC 3339 UTC text with milliseconds (fixed width, so text order
-- is time order). JSON documents are stored as text.

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,          -- UUIDv7: sortable by time
    recipe          TEXT NOT NULL,
    recipe_version  TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'retrying', 'succeeded', 'failed', 'skipped')),
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

CREATE INDEX runs_by_status ON runs (status, id);
CREATE INDEX runs_by_recipe ON runs (recipe, id);

CREATE TABLE steps (
    run_id    TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    step_id   TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('running', 'retrying', 'succeeded', 'failed', 'skipped')),
    PRIMARY KEY (run_id, position)
);

CREATE TABLE attempts (
    run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    duration_ms  INTEGER NOT NULL,
    request      TEXT NOT NULL,
    response     TEXT,
    error        TEXT,
    PRIMARY KEY (run_id, position, n)
);
