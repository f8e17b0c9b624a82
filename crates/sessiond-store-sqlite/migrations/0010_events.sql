-- The outbox: every change that emits an event writes it here in the same transaction.
-- `seq` never goes back (AUTOINCREMENT), so a reader's cursor stays valid after old events are
-- purged; with one writer, commit order is `seq` order.
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    type           TEXT NOT NULL,
    subject        TEXT NOT NULL,
    occurred_at    BIGINT NOT NULL,
    data           TEXT NOT NULL
);
CREATE INDEX events_by_application ON events (application_id, seq);
CREATE INDEX events_by_time ON events (occurred_at);

-- How far the `session_lapse_events` job has written `session.expired` events, per application:
-- the lapse time and id of the last session it reported (NULL: not started; it starts at the
-- time it first runs, so sessions that lapsed before events existed are not reported).
ALTER TABLE session_purges ADD COLUMN lapse_events_through BIGINT;
ALTER TABLE session_purges ADD COLUMN lapse_events_id TEXT NOT NULL DEFAULT '';
