-- What a run needs to resume after a restart or between retries, without sending
-- a different request: the request as rendered at the first attempt, and each
-- finished step's result for the steps after it. Both are sealed: the values of
-- environment secrets are replaced by markers, restored only in memory.
ALTER TABLE steps ADD COLUMN request TEXT;
ALTER TABLE steps ADD COLUMN result TEXT;

CREATE INDEX runs_due ON runs (status, next_attempt_at);
