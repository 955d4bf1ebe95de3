//! `cm-tui template list|show|publish|apply`: the relay's OpenCode config templates. Admins
//! publish named, versioned templates (a JSON file: description, OpenCode keys, MCP servers);
//! anyone with a grant lists and reads them; operators apply a published version to a
//! workspace, and the host merges it under its own policy.

use crate::commands::CommandError;
use crate::remote::{Remote, Target};
use crate::view::text::sanitize;
use clap::Subcommand;
use cm_client::LinkError;
use proto::op;
use proto::template::{
    Template, TemplateApplied, TemplateApply, TemplateApplyEvent, TemplateContent, TemplatePublish,
    TemplateQuery, TemplateSummary,
};
use proto::wire_error::{ErrorCode, WireError};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Read as _;

/// `cm-tui template …`.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// The published templates, latest version of each.
    #[command(after_help = "Examples:\n  cm-tui template list\n  cm-tui template list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One version of a template (the latest by default), its content as JSON.
    #[command(
        after_help = "Examples:\n  cm-tui template show rust-team\n  cm-tui template show rust-team --version 2 --json"
    )]
    Show {
        /// Template name.
        name: String,
        /// The version [default: the latest].
        #[arg(long)]
        version: Option<u32>,
        /// Print the whole stored version (name, version, hash, author, content) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Publish a new version of a template (admins on every host).
    ///
    /// FILE is JSON: {"description": "…", "opencode": {"model": …, "agent": …, "permission":
    /// …}, "mcp": {…}}; `-` reads it from stdin. Republishing the latest content keeps its
    /// version.
    #[command(
        after_help = "Examples:\n  cm-tui template publish rust-team rust-team.json\n  echo '{\"opencode\":{\"model\":\"anthropic/claude-sonnet-4-5\"}}' | cm-tui template publish rust-team -\n\nThe OpenCode keys a template may set: model, small_model, default_agent, agent,\ninstructions, permission. Secrets are never in templates: reference the host's\nenvironment with {env:NAME}."
    )]
    Publish {
        /// Template name (a-z, 0-9, '.', '_', '-').
        name: String,
        /// The JSON file, or `-` for stdin.
        file: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Apply a published template to a workspace (operators).
    ///
    /// The host merges it into the workspace's OpenCode config under its own policy, and
    /// restarts that OpenCode when it runs; progress is printed on stderr.
    #[command(
        after_help = "Examples:\n  cm-tui template apply home-box myproject rust-team\n  cm-tui template apply home-box myproject rust-team --version 2 --json"
    )]
    Apply {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// Template name.
        name: String,
        /// The version [default: the latest].
        #[arg(long)]
        version: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `cm-tui template apply`'s arguments, for [`apply`].
#[derive(Debug)]
pub struct ApplyArgs {
    /// Host id.
    pub host: String,
    /// Workspace name.
    pub workspace: String,
    /// Template name.
    pub name: String,
    /// The version [default: the latest].
    pub version: Option<u32>,
    /// Print JSON.
    pub json: bool,
}

fn print_json<T: Serialize>(v: &T) -> Result<(), CommandError> {
    println!("{}", proto::text::json_pretty(v)?);
    Ok(())
}

/// Runs `cm-tui template …`.
///
/// # Errors
/// Refusals, a FILE that cannot be read or parsed, a failed apply, transport failures.
pub async fn run(remote: &Remote, command: TemplateCommand) -> Result<(), CommandError> {
    match command {
        TemplateCommand::List { json } => {
            let list = remote.call_relay::<op::TemplateList>(&()).await?;
            if json {
                return print_json(&list);
            }
            print!("{}", render_list(&list, cm_client::time::now_ms()));
        }
        TemplateCommand::Show {
            name,
            version,
            json,
        } => {
            let t = remote
                .call_relay::<op::TemplateShow>(&TemplateQuery { name, version })
                .await?;
            if json {
                return print_json(&t);
            }
            print!("{}", render_show(&t)?);
        }
        TemplateCommand::Publish { name, file, json } => {
            let content = read_content(&file)?;
            let s = remote
                .call_relay::<op::TemplatePublish>(&TemplatePublish { name, content })
                .await?;
            if json {
                return print_json(&s);
            }
            println!(
                "{} v{} {} (by {})",
                sanitize(&s.latest.name),
                s.latest.version,
                sanitize(&s.latest.hash),
                sanitize(&s.author)
            );
        }
        TemplateCommand::Apply {
            host,
            workspace,
            name,
            version,
            json,
        } => {
            apply(
                remote,
                ApplyArgs {
                    host,
                    workspace,
                    name,
                    version,
                    json,
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// `template apply`: the first answer, then progress on stderr until `Done` or `Failed`.
///
/// # Errors
/// Refusals, `Failed` from the host, a stream that ends without a result.
pub async fn apply(remote: &Remote, a: ApplyArgs) -> Result<(), CommandError> {
    let target = Target::workspace(&a.host, &a.workspace);
    let body = TemplateApply {
        name: a.name,
        version: a.version,
        resolved: None,
    };
    let (applied, mut events) = remote.stream::<op::TemplateApply>(&target, &body).await?;
    let ws = sanitize(&a.workspace);
    loop {
        match events.next().await? {
            Some(TemplateApplyEvent::Stopping) => eprintln!("stopping OpenCode in {ws}…"),
            Some(TemplateApplyEvent::Starting) => eprintln!("starting OpenCode…"),
            Some(TemplateApplyEvent::Done) => break,
            Some(TemplateApplyEvent::Failed { message }) => {
                return Err(LinkError::Refused(WireError::new(
                    ErrorCode::Internal,
                    format!(
                        "{ws} records {} but OpenCode did not come back: {}; see `cm-tui opencode {} {ws} status`",
                        label(&applied),
                        sanitize(&message),
                        sanitize(&a.host)
                    ),
                ))
                .into());
            }
            None => {
                return Err(CommandError::BadInput(format!(
                    "the host ended the apply without a result; check with `cm-tui opencode {} {ws} status`",
                    sanitize(&a.host)
                )));
            }
        }
    }
    eprintln!("done: {ws} runs {}", label(&applied));
    if a.json {
        return print_json(&applied);
    }
    Ok(())
}

fn label(a: &TemplateApplied) -> String {
    format!("{} v{}", sanitize(&a.template.name), a.template.version)
}

/// Reads a template FILE (`-`: stdin) as [`TemplateContent`]; a parse error names the line and
/// column.
///
/// # Errors
/// [`CommandError::BadInput`] naming the file and what is wrong.
pub fn read_content(file: &str) -> Result<TemplateContent, CommandError> {
    let text = if file == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| {
            CommandError::BadInput(format!("cannot read the template from stdin: {e}"))
        })?;
        s
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| CommandError::BadInput(format!("cannot read {file}: {e}")))?
    };
    parse_content(if file == "-" { "stdin" } else { file }, &text)
}

/// [`TemplateContent`] from JSON text; errors name `source`, the line and the column.
///
/// # Errors
/// [`CommandError::BadInput`].
pub fn parse_content(source: &str, text: &str) -> Result<TemplateContent, CommandError> {
    serde_json::from_str(text).map_err(|e| {
        CommandError::BadInput(format!(
            "{source}: line {}, column {}: {e}; a template is JSON: {{\"description\": \"…\", \
             \"opencode\": {{…}}, \"mcp\": {{…}}}}",
            e.line(),
            e.column()
        ))
    })
}

/// The text form of `template list`: one template per line.
pub fn render_list(list: &[TemplateSummary], now_ms: u64) -> String {
    if list.is_empty() {
        return "no templates published; an admin publishes one with `cm-tui template publish NAME FILE`\n"
            .into();
    }
    let mut out = String::new();
    for t in list {
        let _ = write!(
            out,
            "{} v{}  by {} {}  {}",
            sanitize(&t.latest.name),
            t.latest.version,
            sanitize(&t.author),
            crate::connect::ago(now_ms, Some(t.published_ms)),
            sanitize(&t.latest.hash)
        );
        if !t.mcp.is_empty() {
            let names: Vec<String> = t.mcp.iter().map(|m| sanitize(m)).collect();
            let _ = write!(out, "  mcp: {}", names.join(", "));
        }
        if !t.description.is_empty() {
            let _ = write!(out, "  — {}", sanitize(&t.description));
        }
        out.push('\n');
    }
    out
}

/// The text form of `template show`: a header line, then the content as pretty JSON.
///
/// # Errors
/// JSON encoding.
pub fn render_show(t: &Template) -> Result<String, CommandError> {
    Ok(format!(
        "{} v{} {} by {}\n{}\n",
        sanitize(&t.id.name),
        t.id.version,
        sanitize(&t.id.hash),
        sanitize(&t.author),
        proto::text::json_pretty(&t.content)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::template::TemplateRef;

    #[test]
    fn publish_help_names_every_key_a_template_may_set() {
        use clap::Subcommand as _;
        let mut cmd = TemplateCommand::augment_subcommands(clap::Command::new("template"));
        let publish = cmd
            .find_subcommand_mut("publish")
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default();
        for key in proto::template::OPENCODE_KEYS {
            assert!(publish.contains(key), "{key} missing from: {publish}");
        }
        assert!(publish.contains("Examples:"), "{publish}");
    }

    #[test]
    fn parse_errors_name_line_and_column() {
        let e = parse_content("t.json", "{\n  \"opencode\": {\n    \"model\": 1,,\n  }\n}")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.json: line 3, column"), "{e}");
        let e = parse_content("t.json", "{\"extra\": 1}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("extra"), "{e}");
    }

    #[test]
    fn list_lines_carry_version_author_hash_and_servers() {
        let t = TemplateSummary {
            latest: TemplateRef {
                name: "team".into(),
                version: 2,
                hash: "blake3:ab".into(),
            },
            author: "alice\u{1b}[2J".into(),
            published_ms: 1_000,
            description: "rust".into(),
            mcp: vec!["docs".into()],
        };
        assert_eq!(
            render_list(&[t], 61_000),
            "team v2  by alice 1m ago  blake3:ab  mcp: docs  — rust\n"
        );
        assert!(render_list(&[], 0).contains("template publish"));
    }
}
