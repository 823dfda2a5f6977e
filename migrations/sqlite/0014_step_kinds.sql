-- A step's kind (`http`, `log`, …) is recorded with it, so that what shows a run
-- knows how to read its attempts instead of guessing from their fields. Steps
-- recorded before: a step whose attempt recorded a `log` line is a log step.
ALTER TABLE steps ADD COLUMN kind TEXT NOT NULL DEFAULT 'http';
UPDATE steps SET kind = 'log'
WHERE EXISTS (
    SELECT 1 FROM attempts a
    WHERE a.run_id = steps.run_id AND a.position = steps.position
      AND json_valid(a.request) AND json_extract(a.request, '$.log') IS NOT NULL
);
