//! `cm-tui models HOST WORKSPACE [--json]`: the models and agents a prompt may pick there (what
//! the host's OpenCode offers, narrowed by the host's `allowed_models`), default marked.

use crate::commands::CommandError;
use crate::remote::{Remote, Target};
use crate::view::text::sanitize;
use clap::Args;
use proto::op;
use proto::ops::ModelCatalog;
use std::fmt::Write as _;

/// `cm-tui models HOST WORKSPACE`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cm-tui models home-box myproject\n  cm-tui send home-box myproject \"plan the refactor\" --model anthropic/claude-sonnet-4-5 --agent plan"
)]
pub struct ModelsArgs {
    /// Host id.
    pub host: String,
    /// Workspace name.
    pub workspace: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cm-tui models …` (starts the workspace's OpenCode on demand).
///
/// # Errors
/// Refusals and transport failures.
pub async fn run(remote: &Remote, args: ModelsArgs) -> Result<(), CommandError> {
    let target = Target::workspace(&args.host, &args.workspace);
    let catalog = remote.call::<op::ModelList>(&target, &()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&catalog)?);
    } else {
        print!("{}", render(&catalog));
    }
    Ok(())
}

/// The text form: one model per line (`*` marks the default), then the agents.
pub fn render(c: &ModelCatalog) -> String {
    let mut out = String::new();
    if c.models.is_empty() {
        out.push_str("no model may be picked here");
        if !c.allowed.is_empty() {
            let _ = write!(
                out,
                " (the host allows only {})",
                sanitize(&c.allowed.join(", "))
            );
        }
        out.push('\n');
    }
    for m in &c.models {
        let mark = if m.default { "*" } else { " " };
        let _ = writeln!(
            out,
            "{mark} {}  {}",
            sanitize(&m.reference()),
            sanitize(&m.name)
        );
    }
    if !c.agents.is_empty() {
        let names: Vec<String> = c.agents.iter().map(|a| sanitize(&a.name)).collect();
        let _ = writeln!(out, "agents: {}", names.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ops::{AgentChoice, ModelChoice};

    #[test]
    fn render_marks_the_default_and_lists_agents() {
        let c = ModelCatalog {
            models: vec![
                ModelChoice {
                    provider: "mock".into(),
                    model: "a".into(),
                    name: "A".into(),
                    default: true,
                },
                ModelChoice {
                    provider: "mock".into(),
                    model: "b\u{1b}[2J".into(),
                    name: "B".into(),
                    default: false,
                },
            ],
            default: Some("mock/a".into()),
            agents: vec![AgentChoice {
                name: "build".into(),
                description: None,
            }],
            allowed: vec![],
        };
        let text = render(&c);
        assert!(text.starts_with("* mock/a  A\n  mock/b"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.ends_with("agents: build\n"), "{text}");
        let empty = ModelCatalog {
            allowed: vec!["paid/*".into()],
            ..ModelCatalog::default()
        };
        assert_eq!(
            render(&empty),
            "no model may be picked here (the host allows only paid/*)\n"
        );
    }
}
