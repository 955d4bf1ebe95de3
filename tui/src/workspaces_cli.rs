//! `cm-tui workspaces HOST` (the list) and `cm-tui workspaces candidates|add|remove …`: folders
//! beneath roots that allow subworkspaces, made workspaces of their own and forgotten again.
//! One request each, text or `--json`.

use crate::command_error::CommandError;
use crate::remote::{Remote, Target};
use crate::view::text::sanitize;
use clap::{Args, Subcommand};
use proto::op;
use proto::ops::WorkspaceInfo;
use proto::workspace::{WorkspaceAdd, WorkspaceCandidates, WorkspaceRemoved};
use serde::Serialize;

/// `cm-tui workspaces …`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  cm-tui workspaces home-box\n  cm-tui workspaces candidates home-box\n  cm-tui workspaces add home-box src my-clone --name clone\n  cm-tui workspaces remove home-box clone"
)]
pub struct WorkspacesArgs {
    /// Host id (lists its workspaces with their OpenCode state).
    #[arg(required = true)]
    pub host: Option<String>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do [default: list the host's workspaces].
    #[command(subcommand)]
    pub action: Option<WorkspacesAction>,
}

/// The workspace actions.
#[derive(Debug, Subcommand)]
pub enum WorkspacesAction {
    /// Folders directly beneath the roots whose host allows subworkspaces (`subworkspaces =
    /// true` in agent.toml): the candidates `add` accepts.
    #[command(
        after_help = "Examples:\n  cm-tui workspaces candidates home-box\n  cm-tui workspaces candidates home-box --root src --json"
    )]
    Candidates {
        /// Host id.
        host: String,
        /// Only beneath this root workspace.
        #[arg(long)]
        root: Option<String>,
    },
    /// Make a folder directly beneath ROOT a workspace of its own (ROOT's permissions and
    /// sandbox); it stays after an agent restart.
    #[command(
        after_help = "Examples:\n  cm-tui workspaces add home-box src my-clone\n  cm-tui workspaces add home-box src \"my clone\" --name my-clone --json"
    )]
    Add {
        /// Host id.
        host: String,
        /// The root workspace holding the folder.
        root: String,
        /// The folder's name in the root.
        folder: String,
        /// The new workspace's name (default: the folder's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Forget a workspace added with `add` (its OpenCode stops; its files stay).
    #[command(after_help = "Example:\n  cm-tui workspaces remove home-box my-clone")]
    Remove {
        /// Host id.
        host: String,
        /// The added workspace.
        name: String,
    },
}

fn print_json<T: Serialize>(value: &T) -> Result<(), CommandError> {
    println!("{}", proto::text::json_pretty(value)?);
    Ok(())
}

/// Runs `cm-tui workspaces …`.
///
/// # Errors
/// Refusals (a root without subworkspaces, a link, a taken name, a configured workspace) and
/// transport failures.
pub async fn run(remote: &Remote, args: WorkspacesArgs) -> Result<(), CommandError> {
    let json = args.json;
    match args.action {
        None => {
            let host = args.host.unwrap_or_default();
            crate::commands::workspaces(remote, &host, json).await
        }
        Some(WorkspacesAction::Candidates { host, root }) => {
            let target = Target {
                host,
                workspace: root,
                session: None,
            };
            let list: WorkspaceCandidates =
                remote.call::<op::WorkspaceCandidates>(&target, &()).await?;
            if json {
                return print_json(&list);
            }
            print_candidates(&list);
            Ok(())
        }
        Some(WorkspacesAction::Add {
            host,
            root,
            folder,
            name,
        }) => {
            let info: WorkspaceInfo = remote
                .call::<op::WorkspaceAdd>(
                    &Target::workspace(&host, &root),
                    &WorkspaceAdd { folder, name },
                )
                .await?;
            if json {
                return print_json(&info);
            }
            println!(
                "added workspace {} ({})",
                sanitize(&info.name),
                if info.available { "ok" } else { "missing" }
            );
            Ok(())
        }
        Some(WorkspacesAction::Remove { host, name }) => {
            let done: WorkspaceRemoved = remote
                .call::<op::WorkspaceRemove>(&Target::workspace(&host, &name), &())
                .await?;
            if json {
                return print_json(&done);
            }
            println!(
                "removed workspace {} (folder {} in {} left as it was)",
                sanitize(&done.name),
                sanitize(&done.folder),
                sanitize(&done.root)
            );
            Ok(())
        }
    }
}

fn print_candidates(list: &WorkspaceCandidates) {
    if list.candidates.is_empty() {
        println!(
            "no candidates: no root on this host allows subworkspaces, or its folders are empty"
        );
        return;
    }
    println!(
        "{:<16} {:<24} {:<5} {:<16} WORKSPACE",
        "ROOT", "FOLDER", "GIT", "BRANCH"
    );
    for c in &list.candidates {
        println!(
            "{:<16} {:<24} {:<5} {:<16} {}",
            sanitize(&c.root),
            sanitize(&c.folder),
            if c.is_git { "yes" } else { "no" },
            sanitize(c.branch.as_deref().unwrap_or("-")),
            sanitize(c.workspace.as_deref().unwrap_or("-")),
        );
    }
    if list.truncated {
        println!("(more folders not shown)");
    }
}
