-- Identity-verification sessions and their attachments. Identity data, the relying party's
-- provider input and attachments are sealed to keys derived from access keys that are never
-- stored (see docs/design/verification.md); only their hashes and public halves are here.

CREATE TABLE verification_sessions (
    id                 TEXT PRIMARY KEY, -- UUID
    application_id     TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    flow               TEXT NOT NULL,
    state              TEXT NOT NULL,
    state_rank         BIGINT NOT NULL, -- lifecycle order, for listing by state
    fail_reason        TEXT,
    provider           TEXT,
    sub_provider       TEXT,
    options            TEXT NOT NULL, -- JSON, no personal data
    step               TEXT NOT NULL, -- JSON, no personal data
    results_key_hash   BYTEA NOT NULL,
    results_public_key BYTEA NOT NULL,
    input_sealed       BYTEA,
    results_sealed     BYTEA,
    browser_binding    BYTEA,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    finished_at        BIGINT,
    redacted_at        BIGINT,
    version            BIGINT NOT NULL
);
CREATE INDEX verification_sessions_by_created ON verification_sessions (application_id, created_at, id);
CREATE INDEX verification_sessions_by_updated ON verification_sessions (application_id, updated_at, id);
CREATE INDEX verification_sessions_by_state ON verification_sessions (application_id, state_rank, id);
CREATE INDEX verification_sessions_unfinished ON verification_sessions (expires_at) WHERE finished_at IS NULL;
CREATE INDEX verification_sessions_unredacted ON verification_sessions (application_id, finished_at) WHERE redacted_at IS NULL;

CREATE TABLE verification_attachments (
    id              TEXT PRIMARY KEY,
    application_id  TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    verification_id TEXT NOT NULL REFERENCES verification_sessions (id) ON DELETE CASCADE,
    sealed          BYTEA NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX verification_attachments_by_session ON verification_attachments (verification_id);
