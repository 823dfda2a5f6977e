-- A step with `for_each` runs once per element of a list, and each element
-- keeps its own progress: its request, its result and its attempts, so that
-- after a crash the elements that ended are not sent again. `element` is the
-- element's index from 0; -1 is the step itself (every step that is not a
-- loop, and a loop's own row, which holds its status and, once it ended, its
-- `items`). SQLite cannot change a primary key in place: both tables are
-- rebuilt. Nothing refers to them, so the rebuild leaves no key dangling. A step
-- may also be `waiting` now: a `delay` step whose time has not come.
CREATE TABLE steps_with_elements (
    run_id    TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    element   INTEGER NOT NULL DEFAULT -1 CHECK (element >= -1),
    step_id   TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status = 'running' OR status = 'retrying' OR status = 'succeeded'
                                   OR status = 'failed' OR status = 'skipped' OR status = 'waiting'),
    request   TEXT,
    result    TEXT,
    kind      TEXT NOT NULL DEFAULT 'http',
    PRIMARY KEY (run_id, position, element)
) WITHOUT ROWID;
INSERT INTO steps_with_elements (run_id, position, step_id, status, request, result, kind)
    SELECT run_id, position, step_id, status, request, result, kind FROM steps;
DROP TABLE steps;
ALTER TABLE steps_with_elements RENAME TO steps;

CREATE TABLE attempts_with_elements (
    run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    element      INTEGER NOT NULL DEFAULT -1 CHECK (element >= -1),
    n            INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    duration_ms  INTEGER NOT NULL,
    request      TEXT NOT NULL,
    response     TEXT,
    error        TEXT,
    PRIMARY KEY (run_id, position, element, n)
);
INSERT INTO attempts_with_elements (run_id, position, n, started_at, duration_ms, request, response, error)
    SELECT run_id, position, n, started_at, duration_ms, request, response, error FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_with_elements RENAME TO attempts;
