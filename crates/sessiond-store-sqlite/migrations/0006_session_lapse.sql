-- One index for "which sessions have lapsed by T" instead of one per deadline. A session lapses
-- at the earliest of its expiry, abandonment and idle deadline; `DELETE /sessions/expired` and
-- the lapsed-session deletions search this expression directly, and every session write now
-- maintains one index fewer. Terminal sessions kept for retention still use sessions_by_update.
DROP INDEX sessions_by_expiry;
DROP INDEX sessions_by_abandon;
CREATE INDEX sessions_by_lapse ON sessions (
    application_id, min(expire_at, abandon_at, coalesce(idle_deadline, expire_at))
);
