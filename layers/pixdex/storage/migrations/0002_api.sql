-- HTTP API: API keys (hashed) and uploaded query images ("anchors").

-- A key is "pdx_<prefix>_<secret>". Only the prefix (to find the row) and the SHA-256 of
-- the whole key are stored; the key itself is shown once, when it is created. Keys are
-- 256-bit random values, so a fast hash is enough (no password stretching needed).
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    prefix        text NOT NULL UNIQUE CHECK (prefix ~ '^[a-z0-9]{8,32}$'),
    secret_hash   bytea NOT NULL CHECK (length(secret_hash) = 32),
    scope         text NOT NULL DEFAULT 'write' CHECK (scope IN ('read', 'write')),
    name          text CHECK (length(name) <= 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id);

-- A query image uploaded once and searched with repeatedly. The embedding of the whole
-- image (or of the box given at upload) is kept; the bytes are kept in the blob store so
-- a later search can ask for a different region of it.
CREATE TABLE anchors (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    model         text NOT NULL REFERENCES embedding_models (name),
    embedding     halfvec NOT NULL,
    storage_key   text NOT NULL,
    width         integer NOT NULL,
    height        integer NOT NULL,
    format        text NOT NULL,
    bounding_box  jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX anchors_workspace ON anchors (workspace_id, created_at);
