-- The outbox: every change that emits an event writes it here in the same transaction.
-- One b-tree in the order every reader goes (an application's events by `seq`, its own
-- sequence, next = its largest + 1) plus the unique id: an event costs a write path about a
-- third of what a session row does. With one writer, commit order is `seq` order. Retention
-- deletes an application's oldest events but always keeps its newest, so `seq` never goes back
-- and a reader's cursor stays valid.
CREATE TABLE events (
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    id             TEXT NOT NULL UNIQUE,
    type           TEXT NOT NULL,
    subject        TEXT NOT NULL,
    occurred_at    BIGINT NOT NULL,
    data           TEXT NOT NULL,
    PRIMARY KEY (application_id, seq)
) WITHOUT ROWID;

-- How far the `session_lapse_events` job has written `session.expired` events, per application:
-- the lapse time and id of the last session it reported (NULL: not started; it starts at the
-- time it first runs, so sessions that lapsed before events existed are not reported).
ALTER TABLE session_purges ADD COLUMN lapse_events_through BIGINT;
ALTER TABLE session_purges ADD COLUMN lapse_events_id TEXT NOT NULL DEFAULT '';
