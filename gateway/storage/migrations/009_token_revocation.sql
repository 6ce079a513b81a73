-- Tokens expire, and a revoked token stops working at once on every gateway process: any change that can take
-- a token's rights away (a revocation, a new expiry, a deleted token; a principal disabled, its roles changed or
-- the principal deleted) notifies 'token_revoked' at commit, and each process drops that entry from its cache.
-- Payload: 't:' and the token hash in hex, or 'p:' and the principal id.

ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;

CREATE FUNCTION notify_token_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('token_revoked', 't:' || encode(OLD.token_hash, 'hex'));
    RETURN NULL;
END
$$;

CREATE TRIGGER api_tokens_changed AFTER UPDATE OF revoked_at, expires_at, token_hash, principal_id ON api_tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
                       OR OLD.token_hash IS DISTINCT FROM NEW.token_hash
                       OR OLD.principal_id IS DISTINCT FROM NEW.principal_id)
    EXECUTE FUNCTION notify_token_changed();
CREATE TRIGGER api_tokens_deleted AFTER DELETE ON api_tokens FOR EACH ROW EXECUTE FUNCTION notify_token_changed();

CREATE FUNCTION notify_principal_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('token_revoked', 'p:' || OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER principals_changed AFTER UPDATE OF roles, disabled_at ON principals
    FOR EACH ROW WHEN (OLD.roles IS DISTINCT FROM NEW.roles OR OLD.disabled_at IS DISTINCT FROM NEW.disabled_at)
    EXECUTE FUNCTION notify_principal_changed();
CREATE TRIGGER principals_deleted AFTER DELETE ON principals FOR EACH ROW EXECUTE FUNCTION notify_principal_changed();
