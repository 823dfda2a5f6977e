-- The dispatcher's look at the queue (`SELECT id, recipe … WHERE status =
-- 'queued' ORDER BY id LIMIT 256`) read each candidate's row for its recipe: 256
-- row reads per look, and while a recipe at its `concurrency` holds the queue
-- the dispatcher looks each time one of its runs ends. With the recipe in the
-- index, a look reads index pages only. The index still holds only the runs
-- still to do, so finished runs cost nothing here.
DROP INDEX runs_unfinished;
CREATE INDEX runs_unfinished ON runs (status, id, recipe)
    WHERE status = 'queued' OR status = 'running' OR status = 'retrying';
