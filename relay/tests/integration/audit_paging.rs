//! Audit reads filter and page in the database: a user's rows are found however many newer
//! rows others wrote, through the relay's `audit_read` and through `cm-relay audit --user`.

use crate::harness::*;
use anyhow::Result;
use cm_relay::store::AuditEvent;
use proto::admin::{AuditEntry, AuditQuery};
use proto::header::{Op, StreamHeader};
use proto::ids::ReqId;
use std::process::Command;

fn row(actor: &str) -> AuditEvent {
    AuditEvent {
        actor: actor.into(),
        op: "messages".into(),
        decision: "allow".into(),
        ..AuditEvent::default()
    }
}

/// Three rows by bob, then `newer` rows by others (one transaction).
fn bob_then_others(state: &RelayState, newer: usize) -> Result<()> {
    let bob = row("bob");
    let other = row("-@192.0.2.9");
    let mut rows: Vec<(u64, &AuditEvent)> = vec![(1, &bob); 3];
    rows.extend(std::iter::repeat_n((2, &other), newer));
    state.store()?.audit_batch(&rows)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_read_finds_a_users_rows_behind_any_number_of_newer_ones() -> Result<()> {
    let relay = TestRelay::start().await?;
    bob_then_others(&relay.state, 25_000)?;
    let owner = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &owner).await?;
    let query = AuditQuery {
        user: Some("bob".into()),
        limit: 10,
        ..AuditQuery::default()
    };
    let rows: Vec<AuditEntry> = cm_client::request(
        &op.conn,
        &StreamHeader::new(Op::AuditRead, ReqId(1)),
        Some(&query),
    )
    .await?;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.actor == "bob"));
    // Paging backwards from the second row finds the first.
    let older: Vec<AuditEntry> = cm_client::request(
        &op.conn,
        &StreamHeader::new(Op::AuditRead, ReqId(2)),
        Some(&AuditQuery {
            before_id: Some(rows[1].id),
            ..query
        }),
    )
    .await?;
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].id, rows[0].id);
    relay.shutdown().await;
    Ok(())
}

#[test]
fn audit_cli_user_filter_is_applied_before_the_limit() -> Result<()> {
    let state = RelayState::new()?;
    bob_then_others(&state, 30)?;
    let out = Command::new(workspace_bin("cm-relay")?)
        .arg("--state-dir")
        .arg(state.dir.root())
        .args(["audit", "--user", "bob", "--limit", "5"])
        .output()?;
    anyhow::ensure!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout)?;
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().all(|l| l.contains(" bob ")), "{text}");
    Ok(())
}
