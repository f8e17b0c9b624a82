-- Webhook endpoints and the delivery of events to them. New events are sent by the endpoint's
-- cursor (the last event it has been sent), under a lease on the endpoint row, with no row per
-- delivery; an event whose first attempt fails (or is replayed) gets a delivery row, claimed
-- under its own lease for each retry. Attempts are history. Deleting an endpoint takes its
-- deliveries and attempts along; purging an event takes its deliveries.
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    application_id  TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL,
    event_types     TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL,
    secret          BYTEA NOT NULL,
    previous_secret BYTEA,
    previous_until  BIGINT,
    cursor_txid     BIGINT NOT NULL,
    cursor_seq      BIGINT NOT NULL,
    lease_holder    TEXT,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    version         BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_application ON webhook_endpoints (application_id, created_at);

CREATE TABLE webhook_deliveries (
    endpoint_id  TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id     TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    next_at      BIGINT,
    lease_holder TEXT,
    lease_until  BIGINT NOT NULL,
    last_status  INTEGER,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);

-- One row per attempt, in one b-tree ordered the way it is listed (an endpoint's, newest
-- last); attempts go with their endpoint, and by age with the events (`purge_events`).
CREATE TABLE webhook_attempts (
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    at               BIGINT NOT NULL,
    event_id         TEXT NOT NULL,
    number           INTEGER NOT NULL,
    id               TEXT NOT NULL,
    succeeded        BOOLEAN NOT NULL,
    response_code    INTEGER,
    latency_ms       INTEGER NOT NULL,
    response_excerpt TEXT NOT NULL,
    error            TEXT,
    PRIMARY KEY (endpoint_id, at, event_id, number)
);
