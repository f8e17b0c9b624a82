-- The operator console's audit log: who did what to which object, and when. It outlives the
-- applications it names (no foreign key), so deleting an application keeps the record of it.
CREATE TABLE operator_actions (
    id             TEXT PRIMARY KEY,
    at             BIGINT NOT NULL,
    operator_id    TEXT NOT NULL,
    action         TEXT NOT NULL,
    application_id TEXT,
    target         TEXT NOT NULL,
    detail         TEXT NOT NULL
);
CREATE INDEX operator_actions_by_time ON operator_actions (at, id);
CREATE INDEX operator_actions_by_application ON operator_actions (application_id, at, id);
CREATE INDEX operator_actions_by_operator ON operator_actions (operator_id, at, id);
