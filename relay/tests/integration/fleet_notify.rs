//! Notifications in a relay fleet (issues #22 and #19): the TUI's focus signal reaches the
//! relay holding the host's agent. Two real `cm-relay` processes on one PostgreSQL; the
//! operator is on relay A, the (scripted) agent on relay B: a permission in the session the
//! operator's TUI shows is held back at B, one in another session is sent.

use crate::fleet_presence::{after, cm_relay, join_two, member, run, run_logged};
use crate::harness::operator_retrying;
use crate::multi_relay::login;
use crate::notify::{add_webhook, next, permission, receiver};
use crate::ownership::{scripted_agent, tell_relay};
use crate::pg_server::PgServer;
use anyhow::Result;
use cm_client as client;
use proto::header::{Op, StreamHeader};
use proto::ids::ReqId;
use proto::notify::Focus;
use proto::token::{EnrollmentToken, Invite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tui_focused_through_relay_a_quiets_that_session_at_relay_b() -> Result<()> {
    let Some(server) = PgServer::start() else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let (a, b) = (
        member(tmp.path(), "a", &server.url())?,
        member(tmp.path(), "b", &server.url())?,
    );
    let init = cm_relay(&a.config, &a.state, &["init", "--public-addr", &a.addr])?;
    let pin = after(&init, "relay key pin:")?;
    let invite = Invite::decode(&after(&init, "(valid 7 days):")?)?;
    join_two(&a, &b, 7454)?;
    let token =
        EnrollmentToken::decode(cm_relay(&a.config, &a.state, &["host", "add", "box"])?.trim())?;
    let _relay_a = run(&a)?;
    let (_relay_b, log_b) = run_logged(
        &b,
        "info,cm_relay::net::notify_ops=debug,cm_relay::server=debug",
    )?;

    let cred = login(&a.addr, &pin, &invite).await?;
    let at_a = operator_retrying(&a.addr, &pin, &cred).await?;
    let (url, mut hooks) = receiver().await?;
    add_webhook(&at_a.conn, url).await?;
    // The agent is on relay B only.
    let (_agent, control) = scripted_agent(&b.addr, &pin, &token.secret).await?;

    // The operator's TUI (on A) shows ses_1: B learns it through the fleet.
    let focus = Focus {
        host: "box".into(),
        workspace: "demo".into(),
        session: "ses_1".into(),
    };
    let () = client::request(
        &at_a.conn,
        &StreamHeader::new(Op::NotifyFocus, ReqId(2)),
        Some(&focus),
    )
    .await?;
    log_b.wait_line(&["focus from the fleet", "ses_1"])?;

    tell_relay(&control, permission("ses_1", "per_1")).await?;
    log_b.wait_line(&["notification suppressed", "Present"])?;
    tell_relay(&control, permission("ses_2", "per_2")).await?;
    let sent = next(&mut hooks).await?;
    assert_eq!(sent["session"], "ses_2", "{sent}");
    assert_eq!(sent["count"], 1, "{sent}");
    Ok(())
}
