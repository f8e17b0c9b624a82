-- The outbox: every change that emits an event writes it here in the same transaction.
-- Sequence values are taken before commit, so readers also keep the writing transaction's id
-- (`txid`) and read only events of transactions older than every one still running, in
-- (`txid`, `seq`) order: no event commits behind a reader's cursor.
CREATE TABLE events (
    seq            BIGSERIAL NOT NULL,
    txid           BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    type           TEXT NOT NULL,
    subject        TEXT NOT NULL,
    occurred_at    BIGINT NOT NULL,
    data           TEXT NOT NULL
);
CREATE INDEX events_by_application ON events (application_id, txid, seq);
CREATE INDEX events_by_time ON events (occurred_at);

-- How far the `session_lapse_events` job has written `session.expired` events, per application:
-- the lapse time and id of the last session it reported (NULL: not started; it starts at the
-- time it first runs, so sessions that lapsed before events existed are not reported).
ALTER TABLE session_purges ADD COLUMN lapse_events_through BIGINT;
ALTER TABLE session_purges ADD COLUMN lapse_events_id TEXT NOT NULL DEFAULT '';
