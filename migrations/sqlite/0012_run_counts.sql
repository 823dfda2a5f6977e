-- How many runs each recipe has in each status, kept up to date by triggers, so
-- that the counts of `GET /api/v1/recipes/{id}` and the queue depth of `/health`
-- and `/metrics` are a few row reads, not a count of the table (a recipe with a
-- million runs took a second to count). The triggers run inside the writer's
-- transactions, so the counts are always those of the committed runs.
CREATE TABLE run_counts (
    recipe TEXT NOT NULL,
    status TEXT NOT NULL,
    runs   INTEGER NOT NULL,
    PRIMARY KEY (recipe, status)
) WITHOUT ROWID;

INSERT INTO run_counts (recipe, status, runs)
SELECT recipe, status, COUNT(*) FROM runs GROUP BY recipe, status;

CREATE TRIGGER run_counts_insert AFTER INSERT ON runs
BEGIN
    INSERT INTO run_counts (recipe, status, runs) VALUES (new.recipe, new.status, 1)
    ON CONFLICT (recipe, status) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER run_counts_status AFTER UPDATE OF status ON runs
WHEN old.status IS NOT new.status
BEGIN
    UPDATE run_counts SET runs = runs - 1 WHERE recipe = old.recipe AND status = old.status;
    INSERT INTO run_counts (recipe, status, runs) VALUES (new.recipe, new.status, 1)
    ON CONFLICT (recipe, status) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER run_counts_delete AFTER DELETE ON runs
BEGIN
    UPDATE run_counts SET runs = runs - 1 WHERE recipe = old.recipe AND status = old.status;
END;
