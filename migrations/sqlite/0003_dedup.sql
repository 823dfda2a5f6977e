-- Webhook deduplication: the first run of each (recipe, key). Written in the same
-- transaction as that run, so a repeated delivery finds it even after a restart.
CREATE TABLE dedup (
    recipe      TEXT NOT NULL,
    key         TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (recipe, key)
);
