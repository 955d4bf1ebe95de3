//! Schema migrations of both backends, in one place: an ordered list per backend, each applied
//! in a transaction that records its version (SQLite: `PRAGMA user_version`; PostgreSQL: the
//! `cm_schema` table, under an advisory lock so relays starting together migrate once).
//! Append only; never edit a released migration. A new table or column goes into both lists.

use rusqlite::Connection;

/// Each entry migrates from version `index` to `index + 1`. Append only; never edit a released
/// migration.
pub(super) const SQLITE: &[&str] = &[
    r"
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT,
    created_ms    INTEGER NOT NULL
);
CREATE TABLE grants (
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    host TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (user, host)
);
CREATE TABLE hosts (
    id         TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);
CREATE TABLE creds (
    id         TEXT PRIMARY KEY,
    user       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0,
    label      TEXT,
    created_ms INTEGER NOT NULL
);
CREATE TABLE invites (
    id          INTEGER PRIMARY KEY,
    user        TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    expires_ms  INTEGER NOT NULL,
    used_ms     INTEGER
);
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms     INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    role      TEXT,
    host      TEXT,
    op        TEXT NOT NULL,
    target    TEXT,
    decision  TEXT NOT NULL,
    reason    TEXT,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
",
    r"
CREATE TABLE sessions (
    host       TEXT NOT NULL,
    session    TEXT NOT NULL,
    owner      TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (host, session)
);
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
",
    r"
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
",
    r"
CREATE TABLE prompt_queue (
    id              TEXT PRIMARY KEY,
    host            TEXT NOT NULL,
    workspace       TEXT NOT NULL,
    session         TEXT NOT NULL,
    user            TEXT NOT NULL,
    cred_id         TEXT NOT NULL,
    body            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL,
    state           TEXT NOT NULL,
    detail          TEXT
);
CREATE INDEX prompt_queue_waiting ON prompt_queue(state, host);
CREATE INDEX prompt_queue_user ON prompt_queue(user, created_ms);
",
    // Credentials of removed users (their rows go with the user): kept until they would have
    // expired, so agents are still told to stop launches bound to them.
    r"
CREATE TABLE removed_creds (
    id         TEXT PRIMARY KEY,
    user       TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
",
    // The hosts (or `*`) a removed user's credentials held grants on: revocation notices go
    // only to those hosts' agents.
    r"
CREATE TABLE removed_cred_hosts (
    id   TEXT NOT NULL,
    host TEXT NOT NULL,
    PRIMARY KEY (id, host)
);
",
    // OpenCode config templates: every published version, kept (an applied version stays
    // resolvable).
    r"
CREATE TABLE templates (
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    author       TEXT NOT NULL,
    hash         TEXT NOT NULL,
    content      TEXT NOT NULL,
    published_ms INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
",
    // Which relay claimed a queued prompt for delivery, and when: a relay re-queues only its
    // own claims and those of relays that are gone (or claims too old to be in flight).
    r"
ALTER TABLE prompt_queue ADD COLUMN claimed_by TEXT;
ALTER TABLE prompt_queue ADD COLUMN claimed_ms INTEGER;
",
    // Zero-trust (issue #20): what the relay stores and serves but cannot make. Certificates
    // by serial; the newest revocation list of each signer key; each host's newest key claim;
    // device keys seen at login (first sight kept); roots announced by owners. And the
    // operator's signed header of a queued prompt, delivered verbatim.
    r"
CREATE TABLE trust_certs (
    serial       TEXT PRIMARY KEY,
    issuer       TEXT NOT NULL,
    cert         TEXT NOT NULL,
    published_ms INTEGER NOT NULL
);
CREATE TABLE trust_revocations (
    issuer    TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL,
    issued_ms INTEGER NOT NULL,
    list      TEXT NOT NULL
);
CREATE TABLE trust_host_claims (
    host    TEXT PRIMARY KEY,
    claim   TEXT NOT NULL,
    seen_ms INTEGER NOT NULL
);
CREATE TABLE trust_pending (
    user    TEXT NOT NULL,
    key     TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    label   TEXT,
    PRIMARY KEY (user, key)
);
CREATE TABLE trust_roots (
    user         TEXT NOT NULL,
    key          TEXT NOT NULL,
    announced_ms INTEGER NOT NULL,
    PRIMARY KEY (user, key)
);
ALTER TABLE prompt_queue ADD COLUMN auth TEXT;
",
    // Notifications (issue #22): each user's channels (the spec, secret included, as JSON)
    // and how their deliveries went.
    r"
CREATE TABLE notify_channels (
    user_name     TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    spec          TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    delivered     INTEGER NOT NULL DEFAULT 0,
    last_ok_ms    INTEGER,
    last_error_ms INTEGER,
    last_error    TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_name, name)
);
",
    // Owner root rotations (issue #20): each statement under the root it replaces (the
    // highest sequence number kept), served to agents and laptops like revocation lists.
    r"
CREATE TABLE trust_rotations (
    old_key   TEXT PRIMARY KEY,
    user      TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    statement TEXT NOT NULL
);
",
];

/// PostgreSQL: each entry migrates from version `index` to `index + 1`. The first one is the
/// SQLite schema at its version 7 (users, grants, hosts, credentials, invites, the audit trail
/// with its head row, sessions' owners, TOTP state, the prompt queue, removed credentials,
/// templates) plus `grants_changes`, the counter that tells every relay its cached grants are
/// stale.
pub(super) const POSTGRES: &[&str] = &[
    r#"
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE users (
    name           TEXT PRIMARY KEY,
    password_hash  TEXT,
    created_ms     BIGINT NOT NULL,
    totp_secret    TEXT,
    totp_last_step BIGINT
);
CREATE TABLE grants (
    "user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    host   TEXT NOT NULL,
    role   TEXT NOT NULL,
    PRIMARY KEY ("user", host)
);
CREATE TABLE hosts (
    id         TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE,
    created_ms BIGINT NOT NULL
);
CREATE TABLE creds (
    id         TEXT PRIMARY KEY,
    "user"     TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE,
    label      TEXT,
    created_ms BIGINT NOT NULL
);
CREATE TABLE invites (
    id          BIGSERIAL PRIMARY KEY,
    "user"      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    expires_ms  BIGINT NOT NULL,
    used_ms     BIGINT
);
CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    ts_ms     BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    role      TEXT,
    host      TEXT,
    op        TEXT NOT NULL,
    target    TEXT,
    decision  TEXT NOT NULL,
    reason    TEXT,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
-- The chain's head: every append batch locks it (FOR UPDATE), so appends by several relays
-- are serialized and chain in id order.
CREATE TABLE audit_head (
    one  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    hash TEXT NOT NULL
);
INSERT INTO audit_head(hash)
    VALUES ('0000000000000000000000000000000000000000000000000000000000000000');
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit rows are append-only';
END $$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TABLE sessions (
    host       TEXT NOT NULL,
    session    TEXT NOT NULL,
    owner      TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (host, session)
);
CREATE TABLE prompt_queue (
    id              TEXT PRIMARY KEY,
    host            TEXT NOT NULL,
    workspace       TEXT NOT NULL,
    session         TEXT NOT NULL,
    "user"          TEXT NOT NULL,
    cred_id         TEXT NOT NULL,
    body            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT NOT NULL,
    state           TEXT NOT NULL,
    detail          TEXT
);
CREATE INDEX prompt_queue_waiting ON prompt_queue(state, host);
CREATE INDEX prompt_queue_user ON prompt_queue("user", created_ms);
CREATE TABLE removed_creds (
    id         TEXT PRIMARY KEY,
    "user"     TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE TABLE removed_cred_hosts (
    id   TEXT NOT NULL,
    host TEXT NOT NULL,
    PRIMARY KEY (id, host)
);
CREATE TABLE templates (
    name         TEXT NOT NULL,
    version      BIGINT NOT NULL,
    author       TEXT NOT NULL,
    hash         TEXT NOT NULL,
    content      TEXT NOT NULL,
    published_ms BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE grants_changes (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    n   BIGINT NOT NULL DEFAULT 0
);
INSERT INTO grants_changes DEFAULT VALUES;
CREATE FUNCTION grants_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE grants_changes SET n = n + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER grants_changed AFTER INSERT OR UPDATE OR DELETE ON grants
    FOR EACH STATEMENT EXECUTE FUNCTION grants_changed();
"#,
    // The fleet: the relays sharing this database (each one's peer identity and heartbeat),
    // which relay holds which host's agent, and the `cm_fleet` notices every relay LISTENs to.
    // The notices are sent by triggers, so they go out inside the transaction that made the
    // change (delivered at its commit) whoever made it: a relay or the CLI. A relay's own
    // heartbeat (every second) sends none.
    r#"
CREATE TABLE relays (
    id           TEXT PRIMARY KEY,
    peer_addr    TEXT NOT NULL,
    peer_pin     TEXT NOT NULL,
    added_ms     BIGINT NOT NULL,
    retired_ms   BIGINT,
    heartbeat_ms BIGINT,
    -- The last time another relay (unreachable_by) could not reach it over the peer link.
    unreachable_ms BIGINT,
    unreachable_by TEXT
);
CREATE TABLE presence (
    host         TEXT NOT NULL,
    relay_id     TEXT NOT NULL REFERENCES relays(id) ON DELETE CASCADE,
    conn_id      TEXT NOT NULL,
    connected_ms BIGINT NOT NULL,
    status       TEXT,
    PRIMARY KEY (host, relay_id)
);
CREATE INDEX presence_relay ON presence(relay_id);
CREATE FUNCTION presence_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('cm_fleet', 'presence ' || OLD.host);
    ELSE
        PERFORM pg_notify('cm_fleet', 'presence ' || NEW.host);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER presence_notify AFTER INSERT OR UPDATE OR DELETE ON presence
    FOR EACH ROW EXECUTE FUNCTION presence_notify();
CREATE FUNCTION relays_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cm_fleet', 'relays');
    RETURN NULL;
END $$;
CREATE TRIGGER relays_added AFTER INSERT OR DELETE ON relays
    FOR EACH STATEMENT EXECUTE FUNCTION relays_notify();
CREATE TRIGGER relays_changed AFTER UPDATE OF peer_addr, peer_pin, retired_ms ON relays
    FOR EACH STATEMENT EXECUTE FUNCTION relays_notify();
CREATE OR REPLACE FUNCTION grants_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE grants_changes SET n = n + 1;
    PERFORM pg_notify('cm_fleet', 'grants');
    RETURN NULL;
END $$;
CREATE FUNCTION revocation_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cm_fleet', 'revoked');
    RETURN NULL;
END $$;
CREATE TRIGGER revocation_notify AFTER INSERT OR UPDATE ON settings
    FOR EACH ROW WHEN (NEW.key = 'revocation_epoch') EXECUTE FUNCTION revocation_notify();
"#,
    // Which relay claimed a queued prompt for delivery, and when (the database's clock): a
    // relay re-queues only its own claims and those of relays that are dead or retired (or
    // claims too old to be in flight), never a live peer's delivery.
    r"
ALTER TABLE prompt_queue ADD COLUMN claimed_by TEXT;
ALTER TABLE prompt_queue ADD COLUMN claimed_ms BIGINT;
",
    // Zero-trust (issue #20): as SQLite's version 9.
    r#"
CREATE TABLE trust_certs (
    serial       TEXT PRIMARY KEY,
    issuer       TEXT NOT NULL,
    cert         TEXT NOT NULL,
    published_ms BIGINT NOT NULL
);
CREATE TABLE trust_revocations (
    issuer    TEXT PRIMARY KEY,
    seq       BIGINT NOT NULL,
    issued_ms BIGINT NOT NULL,
    list      TEXT NOT NULL
);
CREATE TABLE trust_host_claims (
    host    TEXT PRIMARY KEY,
    claim   TEXT NOT NULL,
    seen_ms BIGINT NOT NULL
);
CREATE TABLE trust_pending (
    "user"  TEXT NOT NULL,
    key     TEXT NOT NULL,
    seen_ms BIGINT NOT NULL,
    label   TEXT,
    PRIMARY KEY ("user", key)
);
CREATE TABLE trust_roots (
    "user"       TEXT NOT NULL,
    key          TEXT NOT NULL,
    announced_ms BIGINT NOT NULL,
    PRIMARY KEY ("user", key)
);
ALTER TABLE prompt_queue ADD COLUMN auth TEXT;
"#,
    // Notifications (issue #22): as SQLite's version 11.
    r"
CREATE TABLE notify_channels (
    user_name     TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    spec          TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    delivered     BIGINT NOT NULL DEFAULT 0,
    last_ok_ms    BIGINT,
    last_error_ms BIGINT,
    last_error    TEXT,
    failures      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_name, name)
);
",
    // Owner root rotations (issue #20): as SQLite's version 12.
    r#"
CREATE TABLE trust_rotations (
    old_key   TEXT PRIMARY KEY,
    "user"    TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    statement TEXT NOT NULL
);
"#,
];

/// The advisory lock held while migrating PostgreSQL.
const MIGRATE_LOCK: i64 = 0x636d_6d67; // "cmmg"

/// Brings a PostgreSQL database to the newest schema: the pending migrations in one
/// transaction, each recorded in `cm_schema`.
pub(super) fn migrate_postgres(client: &mut postgres::Client) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATE_LOCK});
         CREATE TABLE IF NOT EXISTS cm_schema (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL);"
    ))?;
    let current: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM cm_schema", &[])?
        .try_get(0)?;
    let current = usize::try_from(current).unwrap_or(0);
    for (i, sql) in POSTGRES.iter().enumerate().skip(current) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO cm_schema(version, applied_ms) VALUES ($1, $2)",
            &[
                &i64::try_from(i + 1).unwrap_or(i64::MAX),
                &super::to_i64(crate::time::now_ms()),
            ],
        )?;
    }
    tx.commit()
}

/// Brings the database to the newest schema.
pub(super) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    for (i, sql) in SQLITE.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(())
}
