-- Personal data that used to sit in clear columns is sealed in its own column, so master-key
-- rotation re-seals it like every other sealed value:
-- - the single sign-on (provider and identifier) that started a session;
-- - the claims of JWT templates, which may hold literal secrets.
-- External ids move into the sealed user profile and are found through `user_identifiers`
-- (kind `external_id`); `users.external_id` stays only for rows written by older versions.
ALTER TABLE sessions ADD COLUMN sso BLOB; -- sealed
ALTER TABLE jwt_templates ADD COLUMN claims_sealed BLOB; -- sealed
