-- A counter bumped by every change to secret keys or applications, from any node or process.
-- Nodes keep verified keys and parsed settings in memory and compare this counter on each
-- request, so a revocation is seen at once by every node.
CREATE TABLE auth_epoch (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO auth_epoch (id, value) VALUES (1, 0);

-- Nodes LISTEN on sessiond_auth_epoch and keep the value in memory; the notification carries it.
CREATE FUNCTION auth_epoch_bump() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v BIGINT;
BEGIN
    UPDATE auth_epoch SET value = value + 1 WHERE id = 1 RETURNING value INTO v;
    PERFORM pg_notify('sessiond_auth_epoch', v::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER auth_epoch_keys AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION auth_epoch_bump();
CREATE TRIGGER auth_epoch_apps AFTER UPDATE OR DELETE ON applications
    FOR EACH STATEMENT EXECUTE FUNCTION auth_epoch_bump();
