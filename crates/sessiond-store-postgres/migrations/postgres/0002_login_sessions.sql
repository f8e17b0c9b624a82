-- Login sessions: users directory, sessions, signing keys, JWT templates.

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    external_id    TEXT,
    profile        BYTEA NOT NULL, -- sealed JSON: names, contacts, metadata
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    version        BIGINT NOT NULL
);
CREATE INDEX users_by_application ON users (application_id, created_at DESC, id DESC);
CREATE INDEX users_by_external_id ON users (application_id, external_id);

-- Blind-index hashes of emails, phone numbers and usernames: uniqueness and lookup without
-- storing the values in clear.
CREATE TABLE user_identifiers (
    application_id TEXT NOT NULL,
    kind           TEXT NOT NULL,
    hash           BYTEA NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (application_id, kind, hash)
);
CREATE INDEX user_identifiers_by_user ON user_identifiers (user_id);

CREATE TABLE sessions (
    id                          TEXT PRIMARY KEY,
    application_id              TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    user_id                     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id                   TEXT NOT NULL,
    status                      TEXT NOT NULL,
    actor                       TEXT,
    activity                    BYTEA, -- sealed JSON (IP address, user agent)
    last_active_organization_id TEXT,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    last_active_at              BIGINT NOT NULL,
    expire_at                   BIGINT NOT NULL,
    abandon_at                  BIGINT NOT NULL,
    idle_deadline               BIGINT,
    version                     BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (application_id, user_id, created_at DESC, id DESC);
CREATE INDEX sessions_by_client ON sessions (application_id, client_id, created_at DESC, id DESC);
CREATE INDEX sessions_by_expiry ON sessions (expire_at);
CREATE INDEX sessions_by_abandon ON sessions (abandon_at);
CREATE INDEX sessions_by_update ON sessions (status, updated_at);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    algorithm      TEXT NOT NULL,
    private_key    BYTEA NOT NULL, -- sealed PKCS#8
    public_jwk     TEXT NOT NULL,
    state          TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    activates_at   BIGINT NOT NULL,
    retired_at     BIGINT,
    publish_until  BIGINT NOT NULL,
    version        BIGINT NOT NULL
);
CREATE INDEX signing_keys_by_application ON signing_keys (application_id, created_at);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (application_id) WHERE state = 'current';

CREATE TABLE jwt_templates (
    id                 TEXT PRIMARY KEY,
    application_id     TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    claims             TEXT NOT NULL,
    lifetime           BIGINT NOT NULL,
    allowed_clock_skew BIGINT NOT NULL,
    custom_signing_key BIGINT NOT NULL,
    signing_algorithm  TEXT NOT NULL,
    signing_key        BYTEA, -- sealed
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    version            BIGINT NOT NULL,
    UNIQUE (application_id, name)
);
CREATE INDEX jwt_templates_by_application ON jwt_templates (application_id, created_at DESC, id DESC);
