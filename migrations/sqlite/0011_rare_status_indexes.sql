-- Run listings that cost a page, not the table. Runs that ended `failed` or
-- `skipped` are few among the `succeeded` ones, so each gets small partial
-- indexes, by id and by recipe: `?status=failed` and `?recipe=x&status=failed`
-- read just their page. A run that succeeds touches none of them, so the write
-- of the common case costs what it did (see 0008 for why `runs_by_status` went).
CREATE INDEX runs_failed ON runs (id) WHERE status = 'failed';
CREATE INDEX runs_failed_by_recipe ON runs (recipe, id) WHERE status = 'failed';
CREATE INDEX runs_skipped ON runs (id) WHERE status = 'skipped';
CREATE INDEX runs_skipped_by_recipe ON runs (recipe, id) WHERE status = 'skipped';
