-- metaparticle-sync fencing for PostgreSQL (docs/design.md 3.12).
--
-- Install once per database (idempotent):
--
--   psql -v ON_ERROR_STOP=1 -f sql/fencing.sql
--
-- Then, in the SAME transaction as each write a lock or election guards, call
--
--   SELECT metaparticle_sync_fence('orders', 7);   -- lock name, fencing token (or term)
--
-- before the write. It records the token as the highest seen for that name,
-- or, when a higher one was recorded before, raises SQLSTATE 'MSF01' and the
-- transaction fails, so the guarded write does not land:
--
--   ERROR:  stale fencing token for lock "orders": this write carries token 7, the current token is 8
--
-- Why it holds under concurrency: the upsert takes the row lock of the name's
-- row and keeps it until the transaction ends. A transaction with a lower
-- token that comes later waits for it and then sees the higher token (an
-- upsert re-reads the newest committed row even in READ COMMITTED). So once
-- a transaction with token t' has recorded t', no transaction with a token
-- below t' commits a fenced write after it. Under REPEATABLE READ or
-- SERIALIZABLE a transaction whose snapshot predates another's recorded token
-- fails with 40001 (serialization_failure) instead; retried, it gets MSF01.

CREATE TABLE IF NOT EXISTS metaparticle_sync_fences (
    -- name is the lock or election name.
    name text PRIMARY KEY,
    -- token is the highest fencing token (or term) any committed fenced write carried.
    token bigint NOT NULL CHECK (token > 0),
    -- updated_at is when a write last recorded a token for this name (for people reading the table).
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE metaparticle_sync_fences IS
    'metaparticle-sync: the highest fencing token per lock or election name (sql/fencing.sql)';

CREATE OR REPLACE FUNCTION metaparticle_sync_fence(lock_name text, fencing_token bigint)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    recorded bigint;
BEGIN
    IF lock_name IS NULL OR lock_name = '' THEN
        RAISE EXCEPTION 'metaparticle_sync_fence: lock_name must be a non-empty lock or election name'
            USING ERRCODE = '22023';
    END IF;
    IF fencing_token IS NULL OR fencing_token < 1 THEN
        RAISE EXCEPTION 'metaparticle_sync_fence: fencing_token must be a positive token or term, got %', fencing_token
            USING ERRCODE = '22023';
    END IF;

    -- Equal tokens pass: one holder may make many writes with its token.
    INSERT INTO metaparticle_sync_fences AS f (name, token)
    VALUES (lock_name, fencing_token)
    ON CONFLICT (name) DO UPDATE
        SET token = EXCLUDED.token, updated_at = now()
        WHERE f.token <= EXCLUDED.token
    RETURNING f.token INTO recorded;

    IF recorded IS NULL THEN
        -- The conflicting row was locked by the upsert, so this reads the token that refused us.
        SELECT f.token INTO recorded FROM metaparticle_sync_fences AS f WHERE f.name = lock_name;
        RAISE EXCEPTION 'stale fencing token for lock "%": this write carries token %, the current token is %',
                lock_name, fencing_token, recorded
            USING ERRCODE = 'MSF01',
                  DETAIL = format('lock=%s stale_token=%s current_token=%s', lock_name, fencing_token, recorded),
                  HINT = 'A newer holder of the lock has written since this holder took it: stop, take the lock again, and redo the work.';
    END IF;
END;
$$;

COMMENT ON FUNCTION metaparticle_sync_fence(text, bigint) IS
    'metaparticle-sync: call in the transaction of a guarded write; raises MSF01 when the token is older than the highest recorded for the name';
