-- Retention prunes the oldest finished runs first.
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX runs_replays ON runs (replay_of) WHERE replay_of IS NOT NULL;
CREATE INDEX dedup_by_run ON dedup (run_id);
