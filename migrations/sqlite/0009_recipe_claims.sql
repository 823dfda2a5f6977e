-- Which file owns each recipe id and webhook path: the first to claim it keeps
-- it across reloads and restarts (see src/recipe/claims.rs). `file` is the file's
-- name in the recipes folder.
CREATE TABLE recipe_claims (
    kind  TEXT NOT NULL CHECK (kind IN ('id', 'path')),
    name  TEXT NOT NULL,
    file  TEXT NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
