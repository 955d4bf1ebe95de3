//! `cm-tui mcp list HOST WORKSPACE [--json]`: the MCP servers of a workspace's OpenCode, their
//! status, and the template that defined each.

use crate::commands::CommandError;
use crate::remote::{Remote, Target};
use crate::view::text::sanitize;
use clap::{Args, Subcommand};
use proto::op;
use proto::template::McpServerInfo;
use std::fmt::Write as _;

/// `cm-tui mcp …`.
#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// The MCP servers of a workspace's OpenCode and their status (`stopped` when OpenCode is
    /// not running).
    #[command(
        after_help = "Examples:\n  cm-tui mcp list home-box myproject\n  cm-tui mcp list home-box myproject --json"
    )]
    List(McpListArgs),
}

/// `cm-tui mcp list HOST WORKSPACE`.
#[derive(Debug, Args)]
pub struct McpListArgs {
    /// Host id.
    pub host: String,
    /// Workspace name.
    pub workspace: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cm-tui mcp …` (never starts OpenCode).
///
/// # Errors
/// Refusals and transport failures.
pub async fn run(remote: &Remote, cmd: McpCommand) -> Result<(), CommandError> {
    match cmd {
        McpCommand::List(args) => {
            let target = Target::workspace(&args.host, &args.workspace);
            let servers = remote.call::<op::McpList>(&target, &()).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&servers)?);
            } else {
                print!("{}", render(&servers));
            }
        }
    }
    Ok(())
}

/// The text form: one server per line: name, kind, status (and error), template.
pub fn render(servers: &[McpServerInfo]) -> String {
    if servers.is_empty() {
        return "no MCP server in this workspace (a template adds them: cm-tui template apply)\n"
            .into();
    }
    let mut out = String::new();
    for s in servers {
        let _ = write!(
            out,
            "{}  {}  {}",
            sanitize(&s.name),
            sanitize(&s.kind),
            sanitize(&s.status)
        );
        if let Some(e) = &s.error {
            let _ = write!(out, " ({})", sanitize(e));
        }
        if let Some(t) = &s.template {
            let _ = write!(out, "  template {} v{}", sanitize(&t.name), t.version);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::template::TemplateRef;

    #[test]
    fn render_lists_status_error_and_template() {
        let servers = vec![
            McpServerInfo {
                name: "docs".into(),
                kind: "remote".into(),
                status: "failed".into(),
                error: Some("refused\u{1b}[2J".into()),
                template: Some(TemplateRef {
                    name: "team".into(),
                    version: 2,
                    hash: "blake3:00".into(),
                }),
            },
            McpServerInfo {
                name: "other".into(),
                kind: "unknown".into(),
                status: "connected".into(),
                error: None,
                template: None,
            },
        ];
        let text = render(&servers);
        assert!(text.starts_with("docs  remote  failed (refused"), "{text}");
        assert!(
            text.contains("template team v2\nother  unknown  connected\n"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(render(&[]).starts_with("no MCP server"));
    }
}
