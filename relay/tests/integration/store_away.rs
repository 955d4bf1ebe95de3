//! A relay on PostgreSQL while the database is stopped and started again (issue 19 item 5):
//! an established stream keeps flowing, a mutation and a login are refused with
//! "store unavailable, retrying" (the logins do not count as failures of the address), a read
//! is served from cached grants and its audit row is spooled in the state directory; when the
//! database is back everything works again by itself, the spooled row is in the one chain (which
//! verifies) and the spool is empty.

use crate::forward::header;
use crate::harness::{WAIT, operator, quick_dial, workspace_bin};
use crate::pg_server::PgServer;
use anyhow::{Context, Result};
use cm_client::{self as client, LinkError};
use cm_relay::config::{RelayConfig, StoreConfig};
use cm_relay::framed::{FramedRecv, send_frame};
use cm_relay::server::Relay;
use cm_relay::state::{self, StateDir};
use cm_relay::store::{PgConfig, PgStore, SPOOL_FILE};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::{IssuedCredential, LoginMethod, LoginRequest, PeerKind};
use proto::header::Op;
use proto::ids::{CredId, UserId};
use proto::message::Reply;
use proto::ops::{ForwardHeader, Prompt};
use proto::wire_error::{ErrorCode, WireError};
use std::time::Duration;

const PASSWORD: &str = "a long enough password";

/// An agent for `name` that answers a `messages` request with one reply, a prompt with one
/// reply, and echoes every frame of an `watch_events` stream back until the stream ends.
async fn echo_agent(
    relay: &Relay,
    dir: &StateDir,
    pin: &str,
    name: &str,
) -> Result<(quinn::Connection, FramedRecv)> {
    // The store's PostgreSQL client blocks: off the runtime's threads.
    let (dir, host, addr) = (dir.clone(), name.to_owned(), relay.local_addr().to_string());
    let token =
        tokio::task::spawn_blocking(move || cm_relay::cli::host_add(&dir, &host, Some(addr)))
            .await??;
    let conn = client::dial(&relay.local_addr().to_string(), pin, &quick_dial()).await?;
    let session =
        client::authenticate(conn, PeerKind::Agent, &CredId(name.into()), &token.secret).await?;
    let conn = session.conn.clone();
    tokio::spawn(async move {
        while let Ok((mut send, recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
                let fwd: ForwardHeader = recv.expect().await?;
                recv.set_max_len(MAX_FRAME_LEN);
                if fwd.header.op == Op::WatchEvents {
                    while let Some(line) = recv.next::<String>().await? {
                        send_frame(&mut send, &line, MAX_FRAME_LEN).await?;
                    }
                } else {
                    let answer = format!("{} from {}", fwd.header.op.as_str(), fwd.principal);
                    send_frame(&mut send, &Reply::Ok(answer), MAX_FRAME_LEN).await?;
                }
                send.finish()?;
                Ok::<_, anyhow::Error>(())
            });
        }
    });
    let client::Session {
        conn,
        control_send,
        control_recv,
        ..
    } = session;
    crate::harness::heartbeat_forever(control_send, Default::default()).await?;
    Ok((conn, control_recv))
}

fn password_login() -> LoginRequest {
    LoginRequest {
        v: proto::PROTOCOL_VERSION,
        user: UserId::from("owner"),
        method: LoginMethod::Password {
            password: PASSWORD.into(),
            totp: None,
        },
        ttl_s: None,
        label: None,
        device_key: None,
    }
}

fn refusal(e: LinkError) -> WireError {
    match e {
        LinkError::Refused(w) => w,
        other => panic!("expected a typed refusal, got {other}"),
    }
}

fn assert_store_unavailable(w: &WireError) {
    assert_eq!(w.code, ErrorCode::Unavailable, "{w:?}");
    assert!(
        w.message.starts_with("store unavailable, retrying"),
        "{}",
        w.message
    );
}

/// Sends `line` on the echo stream and reads it back.
async fn echo(send: &mut quinn::SendStream, recv: &mut FramedRecv, line: &str) -> Result<()> {
    send_frame(send, &line.to_owned(), MAX_FRAME_LEN).await?;
    let back: String = tokio::time::timeout(WAIT, recv.next())
        .await?
        .context("read the echo")?
        .context("the stream ended")?;
    anyhow::ensure!(back == line, "echoed {back:?}, sent {line:?}");
    Ok(())
}

fn prompt() -> Prompt {
    Prompt {
        text: "while the database is away".into(),
        idempotency_key: "k1".into(),
        model: None,
        agent: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_stopped_streams_flow_changes_and_logins_are_refused_and_reads_are_spooled_into_the_chain()
-> Result<()> {
    let Some(server) = PgServer::start() else {
        return Ok(());
    };
    let pg = PgConfig {
        url: server.url(),
        ca_file: None,
    };
    let tmp = tempfile::tempdir()?;
    let dir = StateDir::new(tmp.path().join("relay")).with_store(StoreConfig::Postgres(pg.clone()));
    let init_dir = dir.clone();
    let init = tokio::task::spawn_blocking(move || {
        state::init(&init_dir, "127.0.0.1:7443", &UserId::from("owner"))
    })
    .await??;
    let mut config = RelayConfig::new(dir.root().to_owned());
    config.listen = "127.0.0.1:0".parse()?;
    config.heartbeat_timeout = Duration::from_secs(1);
    config.store = StoreConfig::Postgres(pg.clone());
    let relay = Relay::spawn(config).await?;
    let addr = relay.local_addr().to_string();
    let pin = init.pin.clone();

    // The owner sets a password with the invite; an agent connects; the owner opens an
    // `watch_events` stream to it.
    let mut invite_login = password_login();
    invite_login.method = LoginMethod::Invite {
        secret: init.invite.secret,
        new_password: Some(PASSWORD.into()),
    };
    let cred: IssuedCredential = client::login(&addr, &pin, invite_login).await?;
    let _agent = echo_agent(&relay, &dir, &pin, "box").await?;
    let op = operator(&addr, &pin, &cred).await?;
    crate::harness::watch_until(&op, "box online", |l| crate::harness::host_online(l, "box"))
        .await?;
    let (mut send, mut recv) = client::subscribe(&op.conn, &header(Op::WatchEvents, "box")).await?;
    echo(&mut send, &mut recv, "before").await?;

    server.stop();

    // The established stream keeps flowing: splices never touch the store.
    for i in 0..3 {
        echo(&mut send, &mut recv, &format!("while away {i}")).await?;
    }
    // A change is refused (its audit row cannot be made durable), saying why.
    let e = client::request::<_, String>(&op.conn, &header(Op::Prompt, "box"), Some(&prompt()))
        .await
        .map(|_| ())
        .map_err(refusal)
        .expect_err("a prompt while the database is away");
    assert_store_unavailable(&e);
    // A read is served (the owner's grants are cached); its audit row goes to the spool.
    let read: String =
        client::request::<(), String>(&op.conn, &header(Op::Messages, "box"), None).await?;
    assert_eq!(read, "messages from owner");
    // Logins are refused with the same clear error, and do not count as failures of the
    // address: more than its limit (20) of them never turn into "too many failed attempts".
    for _ in 0..25 {
        let e = refusal(
            client::login(&addr, &pin, password_login())
                .await
                .unwrap_err(),
        );
        assert_store_unavailable(&e);
    }
    // So are new connections with a valid credential: not "authentication failed" (which
    // makes agents and cm-tui give up the credential), and not counted either.
    for _ in 0..25 {
        let Err(e) = operator(&addr, &pin, &cred).await else {
            panic!("a new connection while the database is away");
        };
        let link: LinkError = e.downcast()?;
        assert!(
            !link.is_fatal(),
            "agents and cm-tui keep the credential: {link}"
        );
        let e = refusal(link);
        assert_store_unavailable(&e);
    }
    // The rows of the read, of the refused logins and connections are spooled.
    let spool = dir.root().join(SPOOL_FILE);
    let spooled = std::fs::read_to_string(&spool)?;
    for op in ["messages", "login", "handshake"] {
        assert!(
            spooled
                .lines()
                .any(|l| l.contains(&format!(r#""op":"{op}""#))),
            "a {op} row is spooled: {spooled}"
        );
    }
    // A flood of them does not grow the spool one line each: one row per address per
    // window, the rest counted (written as a summary when the window ends).
    for op in ["login", "handshake"] {
        let lines = spooled
            .lines()
            .filter(|l| l.contains(&format!(r#""op":"{op}""#)))
            .count();
        assert!(lines <= 2, "25 refused {op}s spooled as {lines} lines");
    }

    server.start_again();

    // Everything comes back by itself: a login works (the first attempts may still find the
    // old connections dead, and say so).
    let fresh = tokio::time::timeout(WAIT, async {
        loop {
            match client::login(&addr, &pin, password_login()).await {
                Ok(cred) => return Ok::<_, anyhow::Error>(cred),
                Err(LinkError::Refused(w)) if w.code == ErrorCode::Unavailable => {
                    // A retry interval while the relay reconnects, not a synchronisation sleep.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    })
    .await
    .context("no login after the database came back")??;
    let op2 = operator(&addr, &pin, &fresh).await?;
    let answer: String =
        client::request(&op2.conn, &header(Op::Prompt, "box"), Some(&prompt())).await?;
    assert_eq!(answer, "prompt from owner");
    echo(&mut send, &mut recv, "after").await?;

    // The login's row was written after the spooled ones: the spool is empty, and the read's
    // row is in the chain before that login, which verifies.
    assert_eq!(std::fs::metadata(&spool)?.len(), 0, "the spool is emptied");
    let pg_at_end = pg.clone();
    let (verified, rows) = tokio::task::spawn_blocking(move || {
        let store = PgStore::open(&pg)?;
        Ok::<_, anyhow::Error>((store.audit_verify()?, store.audit_tail(1_000)?))
    })
    .await??;
    assert_eq!(verified, None, "the chain verifies");
    let read_row = rows
        .iter()
        .position(|r| r.event.op == "messages")
        .context("the spooled read is in the chain")?;
    let prompt_row = rows
        .iter()
        .position(|r| r.event.op == "prompt" && r.event.decision == "allow")
        .context("the prompt after the restart is in the chain")?;
    assert!(read_row < prompt_row, "spooled rows come first");
    assert_eq!(
        rows.iter().filter(|r| r.event.op == "messages").count(),
        1,
        "appended once"
    );
    let refused_logins = rows[..prompt_row]
        .iter()
        .filter(|r| r.event.op == "login" && r.event.decision == "deny")
        .count();
    assert_eq!(
        refused_logins, 1,
        "one refused login row per address per window; the rest are counted"
    );

    // And `cm-relay audit verify` says so.
    let toml = tmp.path().join("relay.toml");
    std::fs::write(
        &toml,
        format!(
            "[store]\nbackend = \"postgres\"\nurl = \"{}\"\n",
            server.url()
        ),
    )?;
    let (bin, root) = (workspace_bin("cm-relay")?, dir.root().to_owned());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .arg("--config")
            .arg(&toml)
            .arg("--state-dir")
            .arg(&root)
            .args(["audit", "verify"])
            .output()
    })
    .await??;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout)?.trim(), "audit chain intact");
    relay.shutdown().await;

    // At shutdown the counts are written: every refusal is in the trail, one by one or counted.
    let rows =
        tokio::task::spawn_blocking(move || PgStore::open(&pg_at_end)?.audit_tail(1_000)).await??;
    for (what, at_least) in [
        ("logins refused while the database was away", 24),
        ("handshakes refused while the database was away", 24),
    ] {
        let counted: u64 = rows
            .iter()
            .filter_map(|r| r.event.reason.as_deref())
            .filter(|reason| reason.contains(what))
            .filter_map(|reason| reason.split(' ').next()?.parse::<u64>().ok())
            .sum();
        assert!(counted >= at_least, "{counted} {what} counted");
    }
    Ok(())
}
