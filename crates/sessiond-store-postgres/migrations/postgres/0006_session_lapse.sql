-- One index for "which sessions have lapsed by T" instead of one per deadline. A session lapses
-- at the earliest of its expiry, abandonment and idle deadline; `DELETE /sessions/expired` and
-- the lapsed-session deletions search this expression directly, and session writes maintain
-- fewer indexes.
DROP INDEX sessions_by_expiry;
DROP INDEX sessions_by_abandon;
-- Retention looks for terminal sessions by their last update; live sessions (the great
-- majority, and the ones every touch updates) need not be in that index at all.
DROP INDEX sessions_by_update;
CREATE INDEX sessions_by_update ON sessions (status, updated_at)
    WHERE status NOT IN ('active', 'pending');
CREATE INDEX sessions_by_lapse ON sessions (
    application_id, (LEAST(expire_at, abandon_at, COALESCE(idle_deadline, expire_at)))
);
