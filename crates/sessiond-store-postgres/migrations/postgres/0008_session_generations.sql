-- Deleting every session of a user is one row write: the user's session generation moves on,
-- and only sessions created in the user's current generation exist for any read. The rows of
-- earlier generations are listed in `session_sweeps` and removed by the sweeper in small
-- batches soon after (what Redis calls lazy freeing).
ALTER TABLE users ADD COLUMN session_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN user_generation BIGINT NOT NULL DEFAULT 0;
-- A user's listing and count stay inside the index: the generation follows the user id.
DROP INDEX sessions_by_user;
CREATE INDEX sessions_by_user ON sessions (application_id, user_id, user_generation, created_at DESC, id DESC);
CREATE TABLE session_sweeps (
    application_id TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    -- Sessions of this user with a lower generation are gone.
    below          BIGINT NOT NULL,
    PRIMARY KEY (application_id, user_id)
);
