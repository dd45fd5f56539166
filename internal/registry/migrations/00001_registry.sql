-- The registry schema. It sticks to SQL that SQLite and PostgreSQL share
-- (TEXT, BIGINT, composite keys, deferrable foreign keys, row values), so
-- the PostgreSQL store only swaps INTEGER PRIMARY KEY for an identity
-- column. Times are RFC 3339 UTC text with fixed-width nanoseconds, so
-- they sort as text.

-- +goose Up
CREATE TABLE resources (
    kind       TEXT   NOT NULL,
    tenant     TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    managed_by TEXT   NOT NULL CHECK (managed_by IN ('file', 'api')),
    body       TEXT   NOT NULL,
    created_at TEXT   NOT NULL,
    updated_at TEXT   NOT NULL,
    PRIMARY KEY (kind, tenant, name)
);

CREATE INDEX resources_managed_by ON resources (managed_by);

-- refs holds every reference between resources, so a delete finds its
-- referrers with an index instead of scanning JSON bodies. The foreign key
-- to the target is deferred: ApplyFile may write a subscription before its
-- plan, and the store's own checks report a missing target by field first.
CREATE TABLE refs (
    from_kind   TEXT NOT NULL,
    from_tenant TEXT NOT NULL,
    from_name   TEXT NOT NULL,
    field       TEXT NOT NULL,
    to_kind     TEXT NOT NULL,
    to_tenant   TEXT NOT NULL,
    to_name     TEXT NOT NULL,
    PRIMARY KEY (from_kind, from_tenant, from_name, field),
    FOREIGN KEY (from_kind, from_tenant, from_name)
        REFERENCES resources (kind, tenant, name) ON DELETE CASCADE,
    FOREIGN KEY (to_kind, to_tenant, to_name)
        REFERENCES resources (kind, tenant, name) DEFERRABLE INITIALLY DEFERRED
);

CREATE INDEX refs_to ON refs (to_kind, to_tenant, to_name);

-- claims makes a value (a certificate fingerprint, an API key hash, an
-- OAuth2 client id, an application/API pair) belong to one resource per
-- tenant.
CREATE TABLE claims (
    tenant     TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    value      TEXT NOT NULL,
    owner_kind TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    field      TEXT NOT NULL,
    PRIMARY KEY (tenant, namespace, value),
    FOREIGN KEY (owner_kind, tenant, owner_name)
        REFERENCES resources (kind, tenant, name) ON DELETE CASCADE
);

CREATE INDEX claims_owner ON claims (owner_kind, tenant, owner_name);

-- revision is the single-row global change counter; resource versions are
-- taken from it, so they are never reused.
CREATE TABLE revision (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    value BIGINT  NOT NULL
);

INSERT INTO revision (id, value) VALUES (1, 0);

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    who         TEXT NOT NULL,
    action      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    before_hash TEXT NOT NULL,
    after_hash  TEXT NOT NULL
);

CREATE INDEX audit_tenant ON audit (tenant, id);

-- +goose Down
DROP TABLE audit;
DROP TABLE revision;
DROP TABLE claims;
DROP TABLE refs;
DROP TABLE resources;
