//! OpenCode config templates through a real relay: `cm-tui template …` (the real binary)
//! publishes, lists and shows versions; publishes are checked and audited; `template_apply`
//! reaches the agent only with the published version the relay looked up.

use crate::forward::user_with_grant;
use crate::harness::*;
use crate::keyring::{PASSWORD, text, tui};
use anyhow::{Context, Result};
use cm_client::{self as client, LinkError, Session};
use cm_relay::framed::FramedRecv;
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, ReqId};
use proto::op;
use proto::rbac::Role;
use proto::template::{
    OPENCODE_KEYS, Template, TemplateApplied, TemplateApply, TemplateApplyEvent, TemplateContent,
    TemplatePublish, TemplateSummary, content_hash,
};
use proto::token::EnrollmentToken;
use proto::wire_error::ErrorCode;
use std::path::{Path, PathBuf};
use std::process::Output;

/// `cm-tui` logged in as one user, in its own state directory.
struct Tui {
    state: PathBuf,
    home: PathBuf,
    bus: String,
}

impl Tui {
    fn login(relay: &TestRelay, root: &Path, user: &str) -> Result<Self> {
        cm_relay::cli::user_passwd(&relay.state.dir, user, PASSWORD)?;
        let t = Self {
            state: root.join(format!("tui-{user}")),
            home: root.join(format!("home-{user}")),
            bus: format!("unix:path={}", root.join("no-bus").display()),
        };
        let addr = relay.addr_str();
        let out = t.run(&[
            "login",
            &addr,
            "--user",
            user,
            "--pin",
            &relay.state.pin,
            "--password-stdin",
        ])?;
        anyhow::ensure!(out.status.success(), "login {user}: {}", text(&out));
        Ok(t)
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        tokio::task::block_in_place(|| tui(&self.state, &self.home, &self.bus, "file", args))
    }

    /// A successful `--json` command's output.
    fn json<T: serde::de::DeserializeOwned>(&self, args: &[&str]) -> Result<T> {
        let out = self.run(args)?;
        anyhow::ensure!(out.status.success(), "{args:?}: {}", text(&out));
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// A failed `--json` command: its exit code and its error message.
    fn refused(&self, args: &[&str]) -> Result<(i32, String)> {
        let out = self.run(args)?;
        anyhow::ensure!(!out.status.success(), "{args:?} succeeded: {}", text(&out));
        let err: serde_json::Value = serde_json::from_slice(&out.stderr)
            .map_err(|e| anyhow::anyhow!("{e}: {}", text(&out)))?;
        Ok((
            out.status.code().unwrap_or(-1),
            err["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ))
    }
}

fn write(dir: &Path, name: &str, json: &serde_json::Value) -> Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(json)?)?;
    Ok(path.display().to_string())
}

fn team(model: &str) -> serde_json::Value {
    serde_json::json!({
        "description": "rust team defaults",
        "opencode": {"model": model, "permission": {"bash": "ask"}},
        "mcp": {"docs": {"type": "remote", "url": "https://mcp.example.com/docs"}}
    })
}

/// Publish → list → show through `cm-tui`: versions count up, author and hash are recorded,
/// republishing the latest content keeps its version, every publish is audited with its hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cm_tui_template_publish_list_show_records_versions_authors_and_hashes() -> Result<()> {
    let relay = TestRelay::start().await?;
    let root = relay.state.tmp.path().to_owned();
    let owner = Tui::login(&relay, &root, "owner")?;
    let v1_file = write(&root, "v1.json", &team("test/test-model"))?;
    let v2_file = write(&root, "v2.json", &team("test/other-model"))?;

    let empty: Vec<TemplateSummary> = owner.json(&["template", "list", "--json"])?;
    assert!(empty.is_empty());
    let v1: TemplateSummary = owner.json(&["template", "publish", "team", &v1_file, "--json"])?;
    assert_eq!((v1.latest.version, v1.author.as_str()), (1, "owner"));
    let content: TemplateContent = serde_json::from_value(team("test/test-model"))?;
    assert_eq!(v1.latest.hash, content_hash(&content));
    assert_eq!(v1.mcp, ["docs"]);
    let same: TemplateSummary = owner.json(&["template", "publish", "team", &v1_file, "--json"])?;
    assert_eq!(
        same.latest, v1.latest,
        "identical content keeps its version"
    );
    let v2: TemplateSummary = owner.json(&["template", "publish", "team", &v2_file, "--json"])?;
    assert_eq!(v2.latest.version, 2);
    assert_ne!(v2.latest.hash, v1.latest.hash);

    let list: Vec<TemplateSummary> = owner.json(&["template", "list", "--json"])?;
    assert_eq!(list, std::slice::from_ref(&v2));
    let shown: Template = owner.json(&["template", "show", "team", "--version", "1", "--json"])?;
    assert_eq!(shown.id, v1.latest);
    assert_eq!(shown.content, content);
    assert!(shown.hash_matches());
    let out = owner.run(&["template", "show", "team"])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("team v2 {} by owner\n", v2.latest.hash))
            && stdout.contains("\"model\": \"test/other-model\""),
        "{}",
        text(&out)
    );
    let out = owner.run(&["template", "list"])?;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("team v2  by owner"),
        "{}",
        text(&out)
    );

    let (code, message) = owner.refused(&["template", "show", "nope", "--json"])?;
    assert_eq!(code, 5, "{message}");
    assert!(
        message.contains("no template named nope; `cm-tui template list`"),
        "{message}"
    );
    let (code, message) =
        owner.refused(&["template", "show", "team", "--version", "7", "--json"])?;
    assert_eq!(code, 5, "{message}");
    assert!(message.contains("latest is v2"), "{message}");
    let (code, message) = owner.refused(&["template", "apply", "box", "demo", "nope", "--json"])?;
    assert_eq!(code, 5, "{message}");
    assert!(message.contains("no template named nope"), "{message}");

    let store = relay.state.store()?;
    let rows: Vec<_> = store
        .audit_tail(50)?
        .into_iter()
        .filter(|r| r.event.op == "template_publish" && r.event.decision == "allow")
        .map(|r| r.event)
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let reasons: Vec<&str> = rows.iter().filter_map(|r| r.reason.as_deref()).collect();
    assert!(reasons.contains(&v1.latest.hash.as_str()), "{reasons:?}");
    assert!(reasons.contains(&v2.latest.hash.as_str()), "{reasons:?}");
    assert!(
        rows.iter().all(|r| r.actor == "owner"
            && r.target
                .as_deref()
                .is_some_and(|t| t.starts_with("template team v"))),
        "{rows:?}"
    );
    assert_eq!(store.audit_verify()?, None);
    relay.shutdown().await;
    Ok(())
}

/// Bad publishes are refused with what to do, and nothing is stored: a bad name, OpenCode keys
/// outside the template set (the allowed ones listed), a bad MCP server name, content over the
/// limit, a file that is not JSON (line and column named).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_template_publishes_are_refused_with_what_to_do() -> Result<()> {
    let relay = TestRelay::start().await?;
    let root = relay.state.tmp.path().to_owned();
    let owner = Tui::login(&relay, &root, "owner")?;
    let ok = write(&root, "ok.json", &team("test/test-model"))?;

    let (code, message) = owner.refused(&["template", "publish", "Bad/Name", &ok, "--json"])?;
    assert_eq!(code, 2, "{message}");
    assert!(
        message.contains("is not a valid template name"),
        "{message}"
    );

    let keys = write(
        &root,
        "keys.json",
        &serde_json::json!({"opencode": {"model": "a/b", "provider": {"x": {}}, "autoupdate": true}}),
    )?;
    let (code, message) = owner.refused(&["template", "publish", "team", &keys, "--json"])?;
    assert_eq!(code, 2, "{message}");
    assert!(
        message.contains("provider") && message.contains("autoupdate"),
        "{message}"
    );
    for key in OPENCODE_KEYS {
        assert!(message.contains(key), "{message} does not list {key}");
    }

    let mcp = write(
        &root,
        "mcp.json",
        &serde_json::json!({"mcp": {"../x": {"type": "remote", "url": "https://a.example"}}}),
    )?;
    let (code, message) = owner.refused(&["template", "publish", "team", &mcp, "--json"])?;
    assert_eq!(code, 2, "{message}");
    assert!(message.contains("not a valid MCP server name"), "{message}");

    let big = write(
        &root,
        "big.json",
        &serde_json::json!({"description": "x".repeat(proto::template::MAX_CONTENT_LEN)}),
    )?;
    let (code, message) = owner.refused(&["template", "publish", "team", &big, "--json"])?;
    assert_eq!(code, 2, "{message}");
    assert!(message.contains("at most 65536"), "{message}");

    let broken = root.join("broken.json");
    std::fs::write(&broken, "{\n  \"opencode\": {\"model\": \"a/b\",}\n}\n")?;
    let (code, message) = owner.refused(&[
        "template",
        "publish",
        "team",
        &broken.display().to_string(),
        "--json",
    ])?;
    assert_eq!(code, 2, "{message}");
    assert!(message.contains("line 2, column"), "{message}");

    assert!(relay.state.store()?.list_templates()?.is_empty());
    let refused = relay
        .state
        .store()?
        .audit_tail(50)?
        .into_iter()
        .filter(|r| r.event.op == "template_publish" && r.event.decision == "deny")
        .count();
    assert_eq!(refused, 4, "each refusal the relay saw is audited");
    relay.shutdown().await;
    Ok(())
}

/// Publishing is administration of the relay: an operator (who may list and read templates)
/// and an admin of one host are refused; only an admin on every host publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_publish_needs_admin_on_every_host_not_operator_or_one_hosts_admin() -> Result<()>
{
    let relay = TestRelay::start().await?;
    let root = relay.state.tmp.path().to_owned();
    user_with_grant(&relay, "otto", "*", Role::Operator)?;
    user_with_grant(&relay, "hana", "box", Role::Admin)?;
    user_with_grant(&relay, "ada", "*", Role::Admin)?;
    let file = write(&root, "t.json", &team("test/test-model"))?;
    for (user, says) in [
        (
            "otto",
            "template_publish: needs role admin, you have operator",
        ),
        (
            "hana",
            "template_publish: administering the relay needs an admin grant on every host",
        ),
    ] {
        let t = Tui::login(&relay, &root, user)?;
        let (code, message) = t.refused(&["template", "publish", "team", &file, "--json"])?;
        assert_eq!(code, 4, "{user}: {message}");
        assert!(message.contains(says), "{user}: {message}");
        let list: Vec<TemplateSummary> = t.json(&["template", "list", "--json"])?;
        assert!(list.is_empty(), "{user} may list");
    }
    assert!(relay.state.store()?.list_templates()?.is_empty());
    let ada = Tui::login(&relay, &root, "ada")?;
    let s: TemplateSummary = ada.json(&["template", "publish", "team", &file, "--json"])?;
    assert_eq!((s.latest.version, s.author.as_str()), (1, "ada"));
    let otto = Tui::login(&relay, &root, "otto")?;
    let shown: Template = otto.json(&["template", "show", "team", "--json"])?;
    assert_eq!(shown.id, s.latest);
    relay.shutdown().await;
    Ok(())
}

/// A relay with host `box` served by the echoing fake agent, the owner signed in, and template
/// `team` v1 published.
async fn relay_with_echo_agent() -> Result<(TestRelay, FakeAgent, Session, Template)> {
    let relay = TestRelay::start().await?;
    let token = relay.state.add_host("box", relay.addr)?;
    let agent = fake_agent(&relay, &token, Answer::Echo).await?;
    let cred = relay.login_owner().await?;
    let owner = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    watch_until(&owner, "box online", |l| host_online(l, "box")).await?;
    let content: TemplateContent = serde_json::from_value(team("test/test-model"))?;
    let header = StreamHeader::new(Op::TemplatePublish, ReqId(2));
    client::call::<op::TemplatePublish>(
        &owner.conn,
        &header,
        &TemplatePublish {
            name: "team".into(),
            content,
        },
    )
    .await?;
    let stored = relay
        .state
        .store()?
        .template("team", None)?
        .expect("published");
    Ok((relay, agent, owner, stored))
}

fn apply_header() -> StreamHeader {
    let mut h = StreamHeader::new(Op::TemplateApply, ReqId(5));
    h.host = Some(HostId::from("box"));
    h.workspace = Some("demo".into());
    h
}

/// The body the echoing agent received, from its hex answer.
fn forwarded(hex_bytes: &str) -> Result<TemplateApply> {
    let bytes = hex::decode(hex_bytes)?;
    anyhow::ensure!(bytes.len() > 4, "no body forwarded");
    Ok(serde_json::from_slice(&bytes[4..])?)
}

/// `template_apply` reaches the agent with the version the relay looked up (the operator sent
/// only the name), and the stream's audit row names the template, version and hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_apply_reaches_the_agent_with_the_published_version_and_its_hash_audited()
-> Result<()> {
    let (relay, _agent, owner, stored) = relay_with_echo_agent().await?;
    let asked = TemplateApply {
        name: "team".into(),
        version: None,
        resolved: None,
    };
    let hex: String = client::request(&owner.conn, &apply_header(), Some(&asked)).await?;
    let body = forwarded(&hex)?;
    assert_eq!(body.name, "team");
    assert_eq!(body.version, Some(1));
    assert_eq!(body.resolved.as_ref(), Some(&stored));
    assert!(stored.hash_matches());

    let rows = relay.state.store()?.audit_tail(20)?;
    let row = rows
        .iter()
        .find(|r| r.event.op == "template_apply" && r.event.decision == "allow")
        .expect("the apply is audited");
    assert!(
        row.event
            .reason
            .as_deref()
            .is_some_and(|r| r.ends_with(&format!("template team v1 {}", stored.id.hash))),
        "{:?}",
        row.event
    );
    assert_eq!(row.event.host.as_deref(), Some("box"));
    assert_eq!(row.event.target.as_deref(), Some("demo"));

    // An unknown template or version is refused by the relay, with what to do.
    for (name, version, says) in [
        (
            "nope",
            None,
            "no template named nope; `cm-tui template list`",
        ),
        (
            "team",
            Some(4),
            "template team has no version 4 (the latest is v1)",
        ),
    ] {
        let asked = TemplateApply {
            name: name.into(),
            version,
            resolved: None,
        };
        let err = client::request::<_, String>(&owner.conn, &apply_header(), Some(&asked))
            .await
            .expect_err("refused");
        let LinkError::Refused(w) = err else {
            panic!("{err}")
        };
        assert_eq!(w.code, ErrorCode::NotFound, "{w:?}");
        assert!(w.message.contains(says), "{}", w.message);
    }
    relay.shutdown().await;
    Ok(())
}

/// An operator cannot apply content of their own: a `template_apply` body that already carries
/// `resolved` (here a template that would allow every command, under a published name and
/// hash) is refused by the relay, never forwarded, and the refusal is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_apply_with_operator_supplied_content_is_refused_and_never_reaches_the_agent()
-> Result<()> {
    let (relay, _agent, owner, stored) = relay_with_echo_agent().await?;
    let mut forged = stored.clone();
    forged
        .content
        .opencode
        .insert("permission".into(), serde_json::json!({"bash": "allow"}));
    forged.id.hash = content_hash(&forged.content);
    let asked = TemplateApply {
        name: "team".into(),
        version: Some(1),
        resolved: Some(forged),
    };
    let err = client::request::<_, String>(&owner.conn, &apply_header(), Some(&asked))
        .await
        .expect_err("refused before the agent");
    let LinkError::Refused(w) = err else {
        panic!("{err}")
    };
    assert_eq!(w.code, ErrorCode::BadRequest, "{w:?}");
    assert!(
        w.message.contains("`resolved`") && w.message.contains("published versions only"),
        "{}",
        w.message
    );
    let rows = relay.state.store()?.audit_tail(20)?;
    assert!(
        rows.iter()
            .any(|r| r.event.op == "template_apply" && r.event.decision == "deny"),
        "{rows:?}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r.event.op == "template_apply" && r.event.decision == "allow"),
        "{rows:?}"
    );
    relay.shutdown().await;
    Ok(())
}

/// The fake agent's connection, kept while the test runs.
type FakeAgent = (quinn::Connection, FramedRecv);

/// How the fake agent answers a forwarded stream.
#[derive(Clone, Copy)]
enum Answer {
    /// With the hex of every byte that followed the forward header (what the relay sent on).
    Echo,
    /// As the real agent answers `template_apply`: the applied version (from the body the
    /// relay resolved), then `stopping`, `starting` and `done` — or `failed` for the workspace
    /// `broken`.
    Apply,
}

/// A fake agent for host `token.host`, heartbeating all along (`cm-tui` runs take longer than
/// the test relay's 1 s window); kept connected while the returned halves live.
async fn fake_agent(
    relay: &TestRelay,
    token: &EnrollmentToken,
    answer: Answer,
) -> Result<FakeAgent> {
    use cm_relay::framed::send_frame;
    use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
    use proto::message::Reply;
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let session = client::authenticate(
        conn,
        proto::handshake::PeerKind::Agent,
        &proto::ids::CredId(token.host.0.clone()),
        &token.secret,
    )
    .await?;
    let Session {
        conn,
        control_send,
        control_recv,
        ..
    } = session;
    let accepting = conn.clone();
    tokio::spawn(async move {
        while let Ok((mut send, recv)) = accepting.accept_bi().await {
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
                let fwd: proto::ops::ForwardHeader = recv.expect().await?;
                if let Answer::Echo = answer {
                    let mut bytes = recv.take_buffered().to_vec();
                    bytes.extend(recv.into_inner().read_to_end(1 << 20).await?);
                    let echo = Reply::Ok(hex::encode(bytes));
                    send_frame(&mut send, &echo, MAX_FRAME_LEN).await?;
                    send.finish()?;
                    return Ok(());
                }
                recv.set_max_len(MAX_FRAME_LEN);
                let apply: TemplateApply = recv.expect().await?;
                let template = apply.resolved.context("not resolved by the relay")?.id;
                let first = Reply::Ok(TemplateApplied {
                    template,
                    restart: true,
                });
                send_frame(&mut send, &first, MAX_FRAME_LEN).await?;
                let last = if fwd.header.workspace.as_deref() == Some("broken") {
                    TemplateApplyEvent::Failed {
                        message: "opencode exited with status 1".into(),
                    }
                } else {
                    TemplateApplyEvent::Done
                };
                for event in [
                    TemplateApplyEvent::Stopping,
                    TemplateApplyEvent::Starting,
                    last,
                ] {
                    send_frame(&mut send, &event, MAX_FRAME_LEN).await?;
                }
                send.finish()?;
                Ok::<_, anyhow::Error>(())
            });
        }
    });
    heartbeat_forever(control_send, Default::default()).await?;
    Ok((conn, control_recv))
}

/// `cm-tui template apply`: progress on stderr, the applied version with `--json`, and a
/// non-zero exit when the host reports that OpenCode did not come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cm_tui_template_apply_shows_progress_and_fails_when_opencode_does_not_come_back()
-> Result<()> {
    let relay = TestRelay::start().await?;
    let root = relay.state.tmp.path().to_owned();
    let token = relay.state.add_host("box", relay.addr)?;
    let _agent = fake_agent(&relay, &token, Answer::Apply).await?;
    let owner = Tui::login(&relay, &root, "owner")?;
    let file = write(&root, "t.json", &team("test/test-model"))?;
    let published: TemplateSummary =
        owner.json(&["template", "publish", "team", &file, "--json"])?;

    let out = owner.run(&["template", "apply", "box", "demo", "team", "--json"])?;
    assert!(out.status.success(), "{}", text(&out));
    let applied: TemplateApplied = serde_json::from_slice(&out.stdout)?;
    assert_eq!(applied.template, published.latest);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "stopping OpenCode in demo…\nstarting OpenCode…\ndone: demo runs team v1\n"
    );

    let out = owner.run(&["template", "apply", "box", "broken", "team"])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "broken records team v1 but OpenCode did not come back: opencode exited with status 1"
        ),
        "{}",
        text(&out)
    );
    relay.shutdown().await;
    Ok(())
}
