-- Session attributes (Equisoft), the per-session SSO token vault, the impersonation audit trail.

ALTER TABLE sessions ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';

CREATE TABLE session_tokens (
    id             TEXT PRIMARY KEY, -- row identity, also the sealing context
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_id       TEXT NOT NULL,
    value          BYTEA NOT NULL, -- sealed
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (session_id, token_id)
);

-- Kept when sessions go: an audit trail outlives what it describes.
CREATE TABLE impersonation_events (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    session_id     TEXT NOT NULL,
    actor_user_id  TEXT NOT NULL,
    target_user_id TEXT NOT NULL,
    kind           TEXT NOT NULL,
    at             BIGINT NOT NULL
);
CREATE INDEX impersonation_events_by_application ON impersonation_events (application_id, at DESC, id DESC);
