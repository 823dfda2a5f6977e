-- A run's trigger input (payload, headers, query) apart from its state. The input
-- is written once; the state changes three times or more (queued, running, an
-- end), and SQLite rewrites a row's whole page for each change: with the input in
-- the row, every status change of a 7 KB webhook wrote a 16 KiB page of its own;
-- without it, dozens of runs share the page a batch of changes writes.
CREATE TABLE inputs (
    run_id   TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    payload  TEXT NOT NULL,
    headers  TEXT NOT NULL,
    query    TEXT NOT NULL
);
INSERT INTO inputs (run_id, payload, headers, query) SELECT id, payload, headers, query FROM runs;
ALTER TABLE runs DROP COLUMN payload;
ALTER TABLE runs DROP COLUMN headers;
ALTER TABLE runs DROP COLUMN query;
