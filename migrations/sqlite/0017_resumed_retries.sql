-- A step resumed in place gets its `retry.attempts` afresh: `attempts_before`
-- is how many attempts it had when it was last resumed, and its retries count
-- from there (its attempts keep their numbers). 0 for a step never resumed.
ALTER TABLE steps ADD COLUMN attempts_before INTEGER NOT NULL DEFAULT 0;
