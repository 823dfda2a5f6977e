-- What schedule and poll triggers remember across restarts. `last_scheduled_at`
-- is the mark: the schedule time of the last tick (fire or poll), written in the
-- same transaction as the runs it started, so a restart never fires it again.
CREATE TABLE trigger_state (
    recipe             TEXT PRIMARY KEY,
    last_scheduled_at  TEXT NOT NULL,
    last_fired_at      TEXT NOT NULL,
    -- Polls only: the last poll that worked, and how the last one went.
    last_success_at    TEXT,
    last_poll_at       TEXT,
    last_poll_error    TEXT,
    last_poll_items    INTEGER,
    last_poll_new      INTEGER,
    poll_failures      INTEGER NOT NULL DEFAULT 0
);

-- The item keys a poll trigger has seen. `seen_at` moves forward each time an
-- item is seen again, so pruning only forgets items that left the source.
CREATE TABLE poll_seen (
    recipe   TEXT NOT NULL,
    key      TEXT NOT NULL,
    seen_at  TEXT NOT NULL,
    PRIMARY KEY (recipe, key)
) WITHOUT ROWID;
CREATE INDEX poll_seen_age ON poll_seen (recipe, seen_at);
