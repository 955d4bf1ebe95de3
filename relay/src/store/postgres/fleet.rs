//! The fleet's tables on PostgreSQL (there is no SQLite twin: a fleet shares one PostgreSQL):
//! the registered relays and their heartbeats, which relay holds which host's agent, and the
//! `cm_fleet` notices (sent by the triggers of schema migration 2) a relay listens to.
//!
//! Heartbeat ages are measured by the database's clock on both ends (written with it, read
//! against it), so relays whose clocks disagree still agree on who is alive.

use super::{PgConfig, PgStore, StoreError, to_i64, to_u64};
use postgres::fallible_iterator::FallibleIterator as _;
use std::time::Duration;

/// The database clock in unix milliseconds.
const DB_NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// The `LISTEN/NOTIFY` channel of the fleet.
pub const FLEET_CHANNEL: &str = "cm_fleet";

/// One registered relay (a row of `relays`), with how long ago it last heart-beat.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RelayRow {
    /// Its id (`[fleet] id`).
    pub id: String,
    /// Where peers reach it (`host:port`).
    pub peer_addr: String,
    /// The pin of its peer certificate.
    pub peer_pin: String,
    /// When it was registered (unix ms).
    pub added_ms: u64,
    /// When it was retired (`cluster remove`), if it was.
    pub retired_ms: Option<u64>,
    /// Milliseconds since its last heartbeat, by the database's clock (`None`: never, or it
    /// stopped cleanly).
    pub heartbeat_age_ms: Option<u64>,
    /// How many hosts' agents it holds (presence rows).
    pub hosts: u64,
    /// The last report that another relay could not reach it: `(by whom, how long ago)`.
    pub unreachable: Option<(String, u64)>,
}

/// One presence row: `relay_id` holds a connection of `host`'s agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceRow {
    /// The host.
    pub host: String,
    /// The relay holding it.
    pub relay_id: String,
    /// The connection's id on that relay.
    pub conn_id: String,
    /// When the connection authenticated (that relay's clock, unix ms).
    pub connected_ms: u64,
    /// The host's last reported status (JSON), once it heart-beat on this connection.
    pub status: Option<String>,
}

/// A row of `SELECT host, relay_id, conn_id, connected_ms, status FROM presence`.
fn presence_row(r: &postgres::Row) -> Result<PresenceRow, postgres::Error> {
    Ok(PresenceRow {
        host: r.try_get(0)?,
        relay_id: r.try_get(1)?,
        conn_id: r.try_get(2)?,
        connected_ms: to_u64(r.try_get(3)?),
        status: r.try_get(4)?,
    })
}

/// One change of a relay's own presence rows (see [`PgStore::presence_write`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceWrite {
    /// [`PgStore::presence_put`].
    Put {
        /// The host.
        host: String,
        /// The connection.
        conn: String,
        /// When it authenticated.
        connected_ms: u64,
        /// The host's status (JSON), once it heart-beat.
        status: Option<String>,
    },
    /// [`PgStore::presence_remove`].
    Remove {
        /// The host.
        host: String,
        /// The connection.
        conn: String,
    },
}

impl PgStore {
    /// Applies `writes` to `relay`'s presence rows in order, in one transaction (one commit for
    /// a burst of agents connecting).
    ///
    /// # Errors
    /// PostgreSQL failures: nothing was written.
    pub fn presence_write(&self, relay: &str, writes: &[PresenceWrite]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let tx = self.begin(false)?;
        self.presence_write_in(relay, writes)?;
        tx.commit()
    }

    /// Replaces every presence row of `relay` with `writes`, in one transaction: peers see the
    /// old rows or the new ones, never none (a rewrite after the database was away does not
    /// make this relay's hosts flap offline elsewhere).
    ///
    /// # Errors
    /// PostgreSQL failures: nothing was changed.
    pub fn presence_replace(
        &self,
        relay: &str,
        writes: &[PresenceWrite],
    ) -> Result<(), StoreError> {
        let tx = self.begin(false)?;
        self.presence_clear(relay)?;
        self.presence_write_in(relay, writes)?;
        tx.commit()
    }

    fn presence_write_in(&self, relay: &str, writes: &[PresenceWrite]) -> Result<(), StoreError> {
        for w in writes {
            match w {
                PresenceWrite::Put {
                    host,
                    conn,
                    connected_ms,
                    status,
                } => self.presence_put(host, relay, conn, *connected_ms, status.as_deref())?,
                PresenceWrite::Remove { host, conn } => {
                    self.presence_remove(host, relay, conn)?;
                }
            }
        }
        Ok(())
    }

    /// Registers relay `id` with its peer address and pin. Registering a live id again with the
    /// same pin updates its address; a retired id may be registered again (with any pin).
    ///
    /// # Errors
    /// [`StoreError::Refused`] when a live relay of that id has another pin; PostgreSQL
    /// failures.
    pub fn register_relay(
        &self,
        id: &str,
        peer_addr: &str,
        peer_pin: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let tx = self.begin(true)?;
        let existing = self.opt(
            "SELECT peer_pin, retired_ms IS NOT NULL FROM relays WHERE id = $1",
            &[&id],
        )?;
        if let Some(row) = existing {
            let (pin, retired): (String, bool) = (row.try_get(0)?, row.try_get(1)?);
            if !retired && pin != peer_pin {
                return Err(StoreError::Refused(format!(
                    "relay {id:?} is registered with another peer identity ({pin}); if this \
                     machine replaces it, run `cm-relay cluster remove --id {id}` first"
                )));
            }
        }
        self.exec(
            "INSERT INTO relays(id, peer_addr, peer_pin, added_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT(id) DO UPDATE SET peer_addr = excluded.peer_addr,
                 peer_pin = excluded.peer_pin, added_ms = excluded.added_ms, retired_ms = NULL,
                 heartbeat_ms = NULL",
            &[&id, &peer_addr, &peer_pin, &to_i64(now_ms)],
        )?;
        tx.commit()
    }

    /// Retires relay `id`: its peers stop trusting it at once (the `relays` notice) and its
    /// presence rows go.
    ///
    /// # Errors
    /// [`StoreError::Missing`] for an unknown id; PostgreSQL failures.
    pub fn retire_relay(&self, id: &str, now_ms: u64) -> Result<(), StoreError> {
        let tx = self.begin(true)?;
        let n = self.exec(
            "UPDATE relays SET retired_ms = COALESCE(retired_ms, $2), heartbeat_ms = NULL
             WHERE id = $1",
            &[&id, &to_i64(now_ms)],
        )?;
        if n == 0 {
            return Err(StoreError::Missing {
                what: "relay",
                name: id.to_owned(),
            });
        }
        self.exec("DELETE FROM presence WHERE relay_id = $1", &[&id])?;
        tx.commit()
    }

    /// Every registered relay (retired ones too), by id.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn list_relays(&self) -> Result<Vec<RelayRow>, StoreError> {
        self.rows(
            &format!(
                "SELECT r.id, r.peer_addr, r.peer_pin, r.added_ms, r.retired_ms,
                        {DB_NOW_MS} - r.heartbeat_ms,
                        (SELECT COUNT(*) FROM presence p WHERE p.relay_id = r.id),
                        r.unreachable_by, {DB_NOW_MS} - r.unreachable_ms
                   FROM relays r ORDER BY r.id"
            ),
            &[],
        )?
        .into_iter()
        .map(|r| {
            Ok(RelayRow {
                id: r.try_get(0)?,
                peer_addr: r.try_get(1)?,
                peer_pin: r.try_get(2)?,
                added_ms: to_u64(r.try_get(3)?),
                retired_ms: r.try_get::<_, Option<i64>>(4)?.map(to_u64),
                heartbeat_age_ms: r.try_get::<_, Option<i64>>(5)?.map(to_u64),
                hosts: to_u64(r.try_get(6)?),
                unreachable: match (
                    r.try_get::<_, Option<String>>(7)?,
                    r.try_get::<_, Option<i64>>(8)?,
                ) {
                    (Some(by), Some(age)) => Some((by, to_u64(age))),
                    _ => None,
                },
            })
        })
        .collect()
    }

    /// Records that relay `id` is alive now (the database's clock). Returns false when `id`
    /// is not registered or was retired.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn relay_heartbeat(&self, id: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            &format!(
                "UPDATE relays SET heartbeat_ms = {DB_NOW_MS} WHERE id = $1 AND retired_ms IS NULL"
            ),
            &[&id],
        )?;
        Ok(n == 1)
    }

    /// Relay `by` could not reach relay `id` over the peer link just now (shown by
    /// `cluster status` and `doctor`).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn relay_unreachable(&self, id: &str, by: &str) -> Result<(), StoreError> {
        self.exec(
            &format!(
                "UPDATE relays SET unreachable_ms = {DB_NOW_MS}, unreachable_by = $2 WHERE id = $1"
            ),
            &[&id, &by],
        )?;
        Ok(())
    }

    /// Sends `payload` on `cm_fleet` to every relay listening (itself included).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn fleet_announce(&self, payload: &str) -> Result<(), StoreError> {
        self.exec("SELECT pg_notify($1, $2)", &[&FLEET_CHANNEL, &payload])?;
        Ok(())
    }

    /// Relay `id` stopped cleanly: its heartbeat is cleared, so peers count it dead at once.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn relay_stopped(&self, id: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE relays SET heartbeat_ms = NULL WHERE id = $1",
            &[&id],
        )?;
        Ok(())
    }

    /// Relay `relay` holds connection `conn` of `host` (replacing its earlier row for `host`).
    ///
    /// # Errors
    /// PostgreSQL failures (an unregistered relay violates the foreign key).
    pub fn presence_put(
        &self,
        host: &str,
        relay: &str,
        conn: &str,
        connected_ms: u64,
        status: Option<&str>,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO presence(host, relay_id, conn_id, connected_ms, status)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT(host, relay_id) DO UPDATE SET conn_id = excluded.conn_id,
                 connected_ms = excluded.connected_ms, status = excluded.status",
            &[&host, &relay, &conn, &to_i64(connected_ms), &status],
        )?;
        Ok(())
    }

    /// Connection `conn` of `host` on `relay` ended; returns whether its row was there (a
    /// newer connection's row is kept).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn presence_remove(&self, host: &str, relay: &str, conn: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "DELETE FROM presence WHERE host = $1 AND relay_id = $2 AND conn_id = $3",
            &[&host, &relay, &conn],
        )?;
        Ok(n == 1)
    }

    /// Removes every row of `relay` (at its start: what it held before is gone); returns how
    /// many.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn presence_clear(&self, relay: &str) -> Result<usize, StoreError> {
        self.exec("DELETE FROM presence WHERE relay_id = $1", &[&relay])
    }

    /// Presence rows of `hosts` (every row with `None`), by host and relay.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn presence_rows(&self, hosts: Option<&[String]>) -> Result<Vec<PresenceRow>, StoreError> {
        let sql = "SELECT host, relay_id, conn_id, connected_ms, status FROM presence";
        let rows = match hosts {
            None => self.rows(&format!("{sql} ORDER BY host, relay_id"), &[])?,
            Some(hosts) => self.rows(
                &format!("{sql} WHERE host = ANY($1) ORDER BY host, relay_id"),
                &[&hosts],
            )?,
        };
        rows.iter()
            .map(|r| presence_row(r).map_err(StoreError::from))
            .collect()
    }

    /// Hands `each` the presence rows of `hosts` (every host with `None`) held by relays other
    /// than `except`, by host and relay, one at a time as they arrive: a relay's full read of
    /// the fleet never holds every row (and the client's buffers for them) at once.
    ///
    /// # Errors
    /// PostgreSQL failures (`each` may have seen some rows).
    pub fn presence_rows_each(
        &self,
        hosts: Option<&[String]>,
        except: &str,
        mut each: impl FnMut(PresenceRow),
    ) -> Result<(), StoreError> {
        let sql = "SELECT host, relay_id, conn_id, connected_ms, status FROM presence \
                   WHERE relay_id <> $1";
        let order = "ORDER BY host, relay_id";
        let mut client = self.live()?;
        let mut rows = match hosts {
            None => client.query_raw(
                &format!("{sql} {order}"),
                [&except as &(dyn postgres::types::ToSql + Sync)],
            )?,
            Some(hosts) => client.query_raw(
                &format!("{sql} AND host = ANY($2) {order}"),
                [&except as &(dyn postgres::types::ToSql + Sync), &hosts],
            )?,
        };
        while let Some(r) = rows.next()? {
            each(presence_row(&r)?);
        }
        Ok(())
    }

    /// The schema version this database is at (0 before the first migration).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        let v: i64 = self
            .one(
                "SELECT CASE WHEN to_regclass('cm_schema') IS NULL THEN 0
                        ELSE (SELECT COALESCE(MAX(version), 0) FROM cm_schema) END",
                &[],
            )?
            .try_get(0)?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    /// The schema version this build migrates to.
    pub fn expected_schema_version() -> usize {
        super::super::schema::POSTGRES.len()
    }
}

/// A connection that `LISTEN`s on [`FLEET_CHANNEL`].
pub struct PgListener {
    client: postgres::Client,
}

impl std::fmt::Debug for PgListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgListener").finish_non_exhaustive()
    }
}

impl PgListener {
    /// Connects and starts listening.
    ///
    /// # Errors
    /// Connection failures.
    pub fn connect(config: &PgConfig) -> Result<Self, StoreError> {
        let mut client = config.connect()?;
        client.batch_execute(&format!("LISTEN {FLEET_CHANNEL}"))?;
        Ok(Self { client })
    }

    /// Waits up to `timeout` for notices and returns their payloads (none on timeout).
    ///
    /// # Errors
    /// The connection was lost (connect again, and reload everything: notices were missed).
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        {
            let mut notices = self.client.notifications();
            let first = notices.timeout_iter(timeout).next()?;
            if let Some(n) = first {
                out.push(n.payload().to_owned());
                let mut more = notices.iter();
                while let Some(n) = more.next()? {
                    out.push(n.payload().to_owned());
                }
            }
        }
        if out.is_empty() && self.client.is_closed() {
            return Err(StoreError::Connect(
                "the LISTEN connection was closed".into(),
            ));
        }
        Ok(out)
    }

    /// Checks that the connection still works (a silent network cut shows up here).
    ///
    /// # Errors
    /// The connection was lost.
    pub fn ping(&mut self) -> Result<(), StoreError> {
        Ok(self.client.batch_execute("SELECT 1")?)
    }
}
