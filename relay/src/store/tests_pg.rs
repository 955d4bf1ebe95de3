//! The PostgreSQL backend as a fleet uses it: several relays (here, several backends on one
//! database) append to one audit chain and see each other's grant changes.

use super::test_db::pg_config;
use super::*;
use crate::pg_server::PgServer;
use proto::ids::UserId;
use proto::rbac::Role;
use std::sync::Arc;

fn ev(op: &str) -> AuditEvent {
    AuditEvent {
        actor: "alice".into(),
        op: op.into(),
        decision: "allow".into(),
        ..AuditEvent::default()
    }
}

/// A relay's store handle on the server's database (connecting blocks: off the runtime).
async fn relay_store(config: &PgConfig) -> StoreHandle {
    let config = config.clone();
    let backend = tokio::task::spawn_blocking(move || PgBackend::start(&config, None))
        .await
        .unwrap()
        .unwrap();
    StoreHandle::with_backend(Arc::new(backend))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_appending_at_once_keep_one_audit_chain_that_verifies() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let config = pg_config(&server);
    let relays = [
        relay_store(&config).await,
        relay_store(&config).await,
        relay_store(&config).await,
    ];
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let h = relays[usize::try_from(i % 3).unwrap()].clone();
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                0 => {
                    h.audit().record(i, ev("unwaited"));
                    Ok(())
                }
                1 => h.call(move |s| s.audit(i, &ev("in a job"))).await,
                _ => h.audit().durable(i, ev("waited")).await,
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for r in &relays {
        r.close().await.unwrap();
    }
    let rows = relays[0].read(|s| s.audit_tail(1_000)).await.unwrap();
    assert_eq!(rows.len(), 300);
    assert_eq!(relays[1].read(|s| s.audit_verify()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_change_on_another_relay_makes_cached_grants_stale() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let config = pg_config(&server);
    let (a, b) = (relay_store(&config).await, relay_store(&config).await);
    let bob = UserId::from("bob");
    let u = bob.clone();
    a.call(move |s| {
        s.add_user(&u, 1)?;
        s.grant(&u, "*", Role::Viewer)
    })
    .await
    .unwrap();
    assert_eq!(a.grants(&bob).await.unwrap()[0].1, Role::Viewer);
    let u = bob.clone();
    b.call(move |s| s.grant(&u, "*", Role::Admin))
        .await
        .unwrap();
    // Relay a's writer reads the database's change counter before each batch: after this
    // job, its cached grant is stale for sure.
    a.call(|_| Ok(())).await.unwrap();
    assert_eq!(a.grants(&bob).await.unwrap()[0].1, Role::Admin);
}

#[test]
fn a_second_migration_run_changes_nothing_and_the_schema_checks() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let config = pg_config(&server);
    let first = PgStore::open(&config).unwrap();
    first.add_user(&UserId::from("ann"), 1).unwrap();
    let again = PgStore::open(&config).unwrap();
    again.integrity_check().unwrap();
    assert_eq!(again.list_users().unwrap().len(), 1);
}

/// A self-signed certificate and key for `localhost` (PEM).
fn localhost_cert() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

#[test]
fn tls_to_postgres_verifies_the_server_against_ca_file() {
    let (cert, key) = localhost_cert();
    let Some(server) = PgServer::start_with_tls(Some((&cert, &key))) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert).unwrap();
    let url = format!("{}?sslmode=require", server.url()).replace("127.0.0.1", "localhost");
    let tls = PgConfig {
        url: url.clone(),
        ca_file: Some(ca),
    };
    let store = PgStore::open(&tls).unwrap();
    store.set_setting("k", "v").unwrap();
    let ssl: bool = store
        .one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ssl, "the connection is encrypted");

    // Another certificate than the server's: refused.
    let (other, _) = localhost_cert();
    let wrong = dir.path().join("other.pem");
    std::fs::write(&wrong, other).unwrap();
    let err = PgStore::connect(&PgConfig {
        url,
        ca_file: Some(wrong),
    })
    .unwrap_err()
    .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn the_store_reconnects_by_itself_after_the_database_restarts() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let store = PgStore::open(&pg_config(&server)).unwrap();
    store.set_setting("k", "1").unwrap();
    server.restart();
    // The first statement may find the old connection dead: it fails (nothing is retried
    // behind the caller's back); the next one reconnects.
    let _ = store.set_setting("k", "2");
    store.set_setting("k", "3").unwrap();
    assert_eq!(store.setting("k").unwrap().as_deref(), Some("3"));
}
