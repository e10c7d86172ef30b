-- API keys: only a SHA-256 of each key is stored; the key itself is shown once,
-- by `ml-gateway keys create`.
CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    prefix       text NOT NULL,
    key_hash     bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    scopes       text[] NOT NULL
                 CHECK (cardinality(scopes) > 0
                        AND scopes <@ ARRAY['jobs:read', 'jobs:write', 'admin']::text[]),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
