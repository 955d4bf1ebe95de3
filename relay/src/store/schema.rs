//! Schema migrations, applied in order and recorded in `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry migrates from version `index` to `index + 1`. Append only; never edit a released
/// migration.
const MIGRATIONS: &[&str] = &[
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
];

/// Brings the database to the newest schema.
pub(super) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
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
