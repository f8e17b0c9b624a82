-- Deleting an application's lapsed sessions is one row write: a session that lapsed (expiry,
-- abandonment or idle deadline) at or before `lapsed_through` exists for no read. The sweeper
-- removes the rows afterwards and records how far it got in `swept_through`. Every
-- application has its row, so session reads join it without an outer join.
CREATE TABLE session_purges (
    application_id TEXT PRIMARY KEY REFERENCES applications (id) ON DELETE CASCADE,
    lapsed_through BIGINT NOT NULL,
    swept_through  BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO session_purges (application_id, lapsed_through, swept_through)
SELECT id, -9223372036854775807, -9223372036854775807 FROM applications;
