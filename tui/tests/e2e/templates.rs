//! Relay templates applied to a workspace through the real binaries: the host merges the
//! template into the config of its real `opencode serve` (restarting it with progress),
//! `cm-tui workspaces` shows which template runs, `cm-tui mcp list` its MCP server, and a
//! template the host's policy refuses changes nothing.

use crate::harness::*;
use anyhow::{Context as _, Result};
use cm_tui::remote::{Remote, Target};
use proto::op;
use proto::template::{
    TemplateApplied, TemplateApply, TemplateApplyEvent, TemplateContent, TemplatePublish,
};
use proto::wire_error::WireError;
use serde_json::{Value, json};

/// A port nothing listens on: the template's MCP server there fails to connect, which is all
/// `mcp_list` needs to report.
fn closed_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The operator's connection, from the login `cm-tui login` saved for this world.
async fn operator(world: &World) -> Result<Remote> {
    let dir = world
        .tui_env()
        .into_iter()
        .find(|(k, _)| *k == "CM_TUI_STATE_DIR")
        .map(|(_, v)| std::path::PathBuf::from(v))
        .context("no tui state dir")?;
    let logins = cm_tui::profile::Logins::open(&dir, cm_client::secrets::StoreChoice::File)?;
    let now = u64::try_from(std::time::UNIX_EPOCH.elapsed()?.as_millis())?;
    let (profile, key) = logins.load(now)?;
    Ok(Remote::connect(&profile, &key).await?)
}

/// Publishes `content` as the next version of template `team` (which must be `version`) and
/// applies it to `box/demo` the way an operator does: by name and version, the relay resolving
/// it. The first answer (or the refusal) and the progress events until the stream ends.
async fn apply_template(
    world: &World,
    version: u32,
    content: Value,
) -> Result<Result<(TemplateApplied, Vec<TemplateApplyEvent>), WireError>> {
    let content: TemplateContent = serde_json::from_value(content)?;
    let remote = operator(world).await?;
    let published = remote
        .call_relay::<op::TemplatePublish>(&TemplatePublish {
            name: "team".into(),
            content,
        })
        .await?;
    anyhow::ensure!(
        published.latest.version == version,
        "published as v{}, expected v{version}",
        published.latest.version
    );
    let body = TemplateApply {
        name: "team".into(),
        version: Some(version),
        resolved: None,
    };
    let (first, mut events) = match remote
        .stream::<op::TemplateApply>(&Target::workspace("box", "demo"), &body)
        .await
    {
        Ok(ok) => ok,
        Err(cm_client::LinkError::Refused(e)) => return Ok(Err(e)),
        Err(e) => return Err(e.into()),
    };
    let mut seen = Vec::new();
    while let Some(ev) = events.next().await? {
        seen.push(ev);
    }
    remote.close();
    Ok(Ok((first, seen)))
}

fn hash_file(path: &std::path::Path) -> Result<String> {
    Ok(blake3::hash(&std::fs::read(path)?).to_hex().to_string())
}

/// How many OpenCode processes the agent spawned (its log).
fn spawns(world: &World) -> usize {
    world.agent.as_ref().map_or(0, |a| {
        a.stderr_log.lock().map_or(0, |l| {
            l.iter().filter(|l| l.contains("OpenCode spawned")).count()
        })
    })
}

fn workspace_json(world: &World) -> Result<Value> {
    let v: Value = serde_json::from_str(&world.tui_ok(&["workspaces", "box", "--json"])?)?;
    let list = v.as_array().or_else(|| v["workspaces"].as_array()).cloned();
    list.into_iter()
        .flatten()
        .find(|w| w["name"] == "demo")
        .context("demo not listed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_a_template_restarts_opencode_with_it_and_a_refused_one_changes_nothing()
-> Result<()> {
    let port = closed_port()?;
    let mut world = World::start_with(
        &format!("\n[policy]\ntemplate_mcp_urls = [\"http://127.0.0.1:{port}/*\"]\n"),
        &[],
    )
    .await?;
    world.tui_ok(&["opencode", "box", "demo", "start"])?;
    assert_eq!(spawns(&world), 1);

    let (applied, events) = apply_template(
        &world,
        1,
        json!({
            "description": "team defaults",
            "opencode": {
                "permission": {"bash": "deny"},
                "instructions": ["README.md"],
                "agent": {"review": {"description": "reviews", "prompt": "Review.",
                                     "permission": {"edit": "deny"}}}
            },
            "mcp": {"docs": {"type": "remote", "url": format!("http://127.0.0.1:{port}/mcp"),
                             "timeout": 2000}}
        }),
    )
    .await?
    .map_err(|e| anyhow::anyhow!("refused: {e:?}"))?;
    assert!(applied.restart, "OpenCode was running");
    assert_eq!(applied.template.name, "team");
    assert_eq!(
        events,
        [
            TemplateApplyEvent::Stopping,
            TemplateApplyEvent::Starting,
            TemplateApplyEvent::Done
        ]
    );

    // The running OpenCode is a new one, started with the merged config.
    let after: Value =
        serde_json::from_str(&world.tui_ok(&["opencode", "box", "demo", "status", "--json"])?)?;
    assert_eq!(after["state"], "ready", "{after}");
    assert_eq!(spawns(&world), 2, "restarted");
    let config_file = world.agent_state.join("opencode/demo/opencode.json");
    let config: Value = serde_json::from_slice(&std::fs::read(&config_file)?)?;
    assert_eq!(config["mcp"]["docs"]["type"], "remote", "{config}");
    assert_eq!(config["permission"]["bash"], "deny", "{config}");
    assert_eq!(config["agent"]["review"]["prompt"], "Review.", "{config}");
    assert_eq!(config["instructions"], json!(["README.md"]), "{config}");
    assert_eq!(config["permission"]["external_directory"], "deny");
    assert_eq!(config["autoupdate"], false);
    assert_eq!(config["share"], "disabled");
    assert!(config["provider"]["mock"].is_object(), "{config}");

    // Operators see which template runs, and its MCP server.
    let ws = workspace_json(&world)?;
    assert_eq!(ws["template"]["name"], "team", "{ws}");
    assert_eq!(ws["template"]["version"], 1, "{ws}");
    let mcp: Value =
        serde_json::from_str(&world.tui_ok(&["mcp", "list", "box", "demo", "--json"])?)?;
    let docs = mcp
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "docs"))
        .with_context(|| format!("docs not listed: {mcp}"))?;
    assert_eq!(docs["kind"], "remote", "{mcp}");
    assert_eq!(docs["template"]["name"], "team", "{mcp}");
    // Reported by OpenCode itself (not only the template's definition): it runs the template.
    assert!(
        !matches!(docs["status"].as_str(), Some("stopped" | "unknown")),
        "{mcp}"
    );
    let text = world.tui_ok(&["mcp", "list", "box", "demo"])?;
    assert!(
        text.contains("docs  remote") && text.contains("template team v1"),
        "{text}"
    );

    // A local MCP server on a host that does not allow them: refused, nothing changes.
    let state_file = world.agent_state.join("templates/demo.json");
    let hashes = (hash_file(&config_file)?, hash_file(&state_file)?);
    let refused = apply_template(
        &world,
        2,
        json!({"mcp": {"fmt": {"type": "local", "command": ["sh", "-c", "touch /tmp/pwned"]}},
               "opencode": {"permission": {"bash": "allow"}}}),
    )
    .await?
    .err()
    .context("a local MCP server was accepted")?;
    assert!(
        refused.message.contains("template_local_mcp = false")
            && refused.message.contains("bash = allow"),
        "{refused:?}"
    );
    assert_eq!(
        (hash_file(&config_file)?, hash_file(&state_file)?),
        hashes,
        "nothing written"
    );
    assert_eq!(spawns(&world), 2, "not restarted");
    assert_eq!(workspace_json(&world)?["template"]["version"], 1);

    // Stopped: the template's servers are listed as stopped.
    world.tui_ok(&["opencode", "box", "demo", "stop"])?;
    let mcp: Value =
        serde_json::from_str(&world.tui_ok(&["mcp", "list", "box", "demo", "--json"])?)?;
    assert_eq!(mcp[0]["status"], "stopped", "{mcp}");

    // The next agent run keeps the applied template.
    world.agent = None;
    world.start_agent()?;
    assert_eq!(workspace_json(&world)?["template"]["version"], 1);
    Ok(())
}

/// An HTTP listener on 127.0.0.1 that records the head of each request it gets (and answers
/// 404): where a template's remote MCP server points.
fn recording_listener() -> Result<(u16, std::sync::mpsc::Receiver<String>)> {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let _ = conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            if tx
                .send(String::from_utf8_lossy(&head).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    Ok((port, rx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_gets_exactly_the_host_variables_it_references_and_the_host_offers() -> Result<()>
{
    let (port, requests) = recording_listener()?;
    let world = World::start_with(
        &format!(
            "\n[policy]\ntemplate_mcp_urls = [\"http://127.0.0.1:{port}/*\"]\n\
             template_env = [\"DOCS_TOKEN\"]\n[sandbox]\nallow_connect_ports = [{port}]\n"
        ),
        &[
            ("DOCS_TOKEN", "s3cret-token"),
            ("OTHER_SECRET", "not-for-templates"),
        ],
    )
    .await?;

    // A variable the host does not offer: refused.
    let refused = apply_template(
        &world,
        1,
        json!({"mcp": {"docs": {"type": "remote", "url": format!("http://127.0.0.1:{port}/mcp"),
                                "headers": {"X-Other": "{env:OTHER_SECRET}"}}}}),
    )
    .await?
    .err()
    .context("an unoffered variable was accepted")?;
    assert!(
        refused
            .message
            .contains("{env:OTHER_SECRET} is not offered"),
        "{refused:?}"
    );
    assert!(!world.agent_state.join("templates/demo.json").exists());

    // OpenCode is not running: recorded, used by the next start.
    let (applied, events) = apply_template(
        &world,
        2,
        json!({"mcp": {"docs": {"type": "remote", "url": format!("http://127.0.0.1:{port}/mcp"),
                                "headers": {"Authorization": "Bearer {env:DOCS_TOKEN}"}}}}),
    )
    .await?
    .map_err(|e| anyhow::anyhow!("refused: {e:?}"))?;
    assert!(!applied.restart);
    assert_eq!(events, [TemplateApplyEvent::Done]);
    let mcp: Value =
        serde_json::from_str(&world.tui_ok(&["mcp", "list", "box", "demo", "--json"])?)?;
    assert_eq!(mcp[0]["status"], "stopped", "{mcp}");

    world.tui_ok(&["opencode", "box", "demo", "start"])?;
    // Asking for the status makes OpenCode connect its MCP servers.
    world.tui_ok(&["mcp", "list", "box", "demo"])?;
    let head = requests.recv_timeout(WAIT)?;
    assert!(head.contains("Bearer s3cret-token"), "{head}");
    assert!(!head.contains("not-for-templates"), "{head}");
    // The config on disk holds the reference, never the value.
    let config = std::fs::read_to_string(world.agent_state.join("opencode/demo/opencode.json"))?;
    assert!(config.contains("{env:DOCS_TOKEN}") && !config.contains("s3cret-token"));
    Ok(())
}
