-- One row that `GET /api/v1/health` writes while writes have been failing, to
-- learn when the storage takes them again (a full disk freed, an I/O error
-- gone). `room` is 64 KiB, about a webhook's worth: a probe of a few bytes
-- passes on a disk that still refuses webhooks.
CREATE TABLE write_probe (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    at    TEXT NOT NULL,
    room  BLOB NOT NULL
);
