-- Foundation: server metadata, applications, secret keys, job runs.
-- Timestamps are epoch milliseconds (BIGINT); flags are BIGINT 0/1 (portable through sqlx Any).

CREATE TABLE meta (
    name   TEXT PRIMARY KEY,
    value  BYTEA NOT NULL,
    sealed BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE applications (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    environment TEXT NOT NULL,
    settings    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    hash           BYTEA NOT NULL UNIQUE,
    hint           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT
);
CREATE INDEX api_keys_by_application ON api_keys (application_id, created_at);
CREATE INDEX api_keys_by_revocation ON api_keys (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE job_runs (
    job         TEXT NOT NULL,
    slot        BIGINT NOT NULL,
    holder      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    outcome     TEXT,
    PRIMARY KEY (job, slot)
);
CREATE INDEX job_runs_by_start ON job_runs (started_at);
