-- A counter bumped by every change to secret keys or applications, from any connection or
-- process (the server, or an administrative command beside it). Nodes keep verified keys and
-- parsed settings in memory and compare this counter on each request: a revocation is seen at
-- once without reading the key again.
CREATE TABLE auth_epoch (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO auth_epoch (id, value) VALUES (1, 0);

CREATE TRIGGER auth_epoch_key_insert AFTER INSERT ON api_keys
BEGIN UPDATE auth_epoch SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_key_update AFTER UPDATE ON api_keys
BEGIN UPDATE auth_epoch SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_key_delete AFTER DELETE ON api_keys
BEGIN UPDATE auth_epoch SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_app_update AFTER UPDATE ON applications
BEGIN UPDATE auth_epoch SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_app_delete AFTER DELETE ON applications
BEGIN UPDATE auth_epoch SET value = value + 1 WHERE id = 1; END;
