//! The folder and git scripting commands: `cm-tui fs HOST WORKSPACE ls|mkdir|mv|rmdir PATH…` and
//! `cm-tui git HOST WORKSPACE status|diff|log|add|commit|branch|checkout|pull|push|init|clone|config …`, one
//! request each, printed as text or `--json`. Paths are relative to the workspace root; the
//! agent refuses anything that would leave it and says which rule and which component.

use crate::commands::CommandError;
use crate::remote::{Remote, Target};
use crate::view::text::{sanitize, sanitize_text};
use clap::{Args, Subcommand};
use proto::fs::{FsDone, FsListing, FsPath, FsRename};
use proto::git::{
    GitAdd, GitBranchCreate, GitBranches, GitCheckout, GitClone, GitCloneEvent, GitCommit,
    GitCommitted, GitConfigDone, GitConfigSet, GitDiff, GitDiffQuery, GitInitialized, GitLog,
    GitLogQuery, GitOutput, GitRemoteQuery, GitScope, GitStatus,
};
use proto::op;
use proto::operation::Unary;
use serde::Serialize;

mod format;

use format::{format_branches, format_cloned, format_progress};
pub use format::{format_listing, format_status};

/// `cm-tui fs HOST WORKSPACE ACTION …`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cm-tui fs home-box myproject ls\n  cm-tui fs home-box myproject ls src --json\n  cm-tui fs home-box myproject mkdir src/new"
)]
pub struct FsArgs {
    /// Host id.
    pub host: String,
    /// Workspace name.
    pub workspace: String,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub action: FsAction,
}

/// The folder actions.
#[derive(Debug, Subcommand)]
pub enum FsAction {
    /// List a folder (folders first; links shown, never followed; at most 1000 entries).
    #[command(
        after_help = "Examples:\n  cm-tui fs home-box myproject ls\n  cm-tui fs home-box myproject ls src --json"
    )]
    Ls {
        /// Folder relative to the workspace root [default: the root].
        #[arg(default_value = "", hide_default_value = true)]
        path: String,
    },
    /// Create a folder (its parent must exist).
    #[command(after_help = "Example:\n  cm-tui fs home-box myproject mkdir src/new")]
    Mkdir {
        /// Folder relative to the workspace root.
        path: String,
    },
    /// Rename or move a file or folder within the workspace (never over an existing one).
    #[command(after_help = "Example:\n  cm-tui fs home-box myproject mv notes docs/notes")]
    Mv {
        /// What to rename.
        from: String,
        /// The new path.
        to: String,
    },
    /// Delete an empty folder.
    #[command(after_help = "Example:\n  cm-tui fs home-box myproject rmdir build/tmp")]
    Rmdir {
        /// Folder relative to the workspace root.
        path: String,
    },
}

/// `cm-tui git HOST WORKSPACE ACTION …`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cm-tui git home-box myproject status\n  cm-tui git home-box myproject add src/main.rs\n  cm-tui git home-box myproject commit -m \"fix the parser\"\n  cm-tui git home-box myproject branch feature/x --checkout\n  cm-tui git home-box myproject log --limit 5 --json"
)]
pub struct GitArgs {
    /// Host id.
    pub host: String,
    /// Workspace name.
    pub workspace: String,
    /// Folder of the workspace to run in [default: the root].
    #[arg(long, global = true, default_value = "", hide_default_value = true)]
    pub dir: String,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub action: GitAction,
}

/// The git actions.
#[derive(Debug, Subcommand)]
pub enum GitAction {
    /// Branch, upstream and changed files.
    #[command(after_help = "Example:\n  cm-tui git home-box myproject status --json")]
    Status,
    /// Unstaged changes (or staged ones with --staged), optionally only some paths.
    #[command(after_help = "Example:\n  cm-tui git home-box myproject diff --staged src/main.rs")]
    Diff {
        /// The staged changes instead.
        #[arg(long)]
        staged: bool,
        /// Only these paths.
        paths: Vec<String>,
    },
    /// Recent commits, newest first.
    #[command(after_help = "Example:\n  cm-tui git home-box myproject log --limit 5")]
    Log {
        /// How many (default 50, at most 500).
        #[arg(long)]
        limit: Option<u32>,
        /// Start from this branch or commit instead of HEAD.
        #[arg(long)]
        rev: Option<String>,
    },
    /// Stage paths (`.` for everything in the folder).
    #[command(after_help = "Example:\n  cm-tui git home-box myproject add src/main.rs")]
    Add {
        /// Paths to stage.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Commit what is staged (you are recorded as the author).
    #[command(
        after_help = "Example:\n  cm-tui git home-box myproject commit -m \"fix the parser\""
    )]
    Commit {
        /// The message.
        #[arg(short, long)]
        message: String,
        /// Stage every modified tracked file first.
        #[arg(long)]
        all: bool,
    },
    /// List branches, or create one.
    #[command(after_help = "Example:\n  cm-tui git home-box myproject branch feature/x --checkout")]
    Branch {
        /// A new branch's name (none: list branches).
        name: Option<String>,
        /// Where the new branch starts [default: HEAD].
        #[arg(long, requires = "name")]
        start: Option<String>,
        /// Switch to the new branch.
        #[arg(long, requires = "name")]
        checkout: bool,
    },
    /// Switch to an existing local branch.
    #[command(after_help = "Example:\n  cm-tui git home-box myproject checkout main")]
    Checkout {
        /// The branch.
        branch: String,
    },
    /// Fast-forward from a configured remote (may be disabled by the host).
    #[command(after_help = "Example:\n  cm-tui git home-box myproject pull --remote origin")]
    Pull {
        /// The remote [default: the branch's upstream remote, else origin].
        #[arg(long)]
        remote: Option<String>,
        /// The branch [default: the current one].
        #[arg(long)]
        branch: Option<String>,
    },
    /// Push a branch to a configured remote, never forced (may be disabled by the host).
    #[command(after_help = "Example:\n  cm-tui git home-box myproject push --branch feature/x")]
    Push {
        /// The remote [default: the branch's upstream remote, else origin].
        #[arg(long)]
        remote: Option<String>,
        /// The branch [default: the current one].
        #[arg(long)]
        branch: Option<String>,
    },
    /// Create a repository in a new or empty folder.
    #[command(after_help = "Example:\n  cm-tui git home-box myproject init libs/new")]
    Init {
        /// The folder relative to the workspace root [default: --dir, else the root].
        path: Option<String>,
    },
    /// Clone a repository into a new folder (the host decides which URLs are allowed:
    /// `[git] clone_from`, default https:// and ssh:// only).
    #[command(
        after_help = "Example:\n  cm-tui git home-box myproject clone https://github.com/org/lib.git libs/lib"
    )]
    Clone {
        /// The remote URL.
        url: String,
        /// The new folder relative to the workspace root.
        path: String,
    },
    /// Set one key of the repository's config (only user.name, user.email, remote.<name>.url,
    /// branch.<name>.remote, branch.<name>.merge, core.autocrlf).
    #[command(
        after_help = "Examples:\n  cm-tui git home-box myproject config user.name \"Ada Lovelace\"\n  cm-tui git home-box myproject --dir libs/lib config remote.origin.url https://github.com/org/lib.git"
    )]
    Config {
        /// The key.
        key: String,
        /// The value.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
}

async fn call<O: Unary>(
    remote: &Remote,
    host: &str,
    workspace: &str,
    body: &O::Body,
) -> Result<O::Reply, CommandError> {
    Ok(remote
        .call::<O>(&Target::workspace(host, workspace), body)
        .await?)
}

fn print_json<T: Serialize>(v: &T) -> Result<(), CommandError> {
    println!("{}", proto::text::json_pretty(v)?);
    Ok(())
}

/// Runs `cm-tui fs …`.
///
/// # Errors
/// Refusals (with the rule and component) and transport failures.
pub async fn run_fs(remote: &Remote, args: FsArgs) -> Result<(), CommandError> {
    let FsArgs {
        host,
        workspace,
        json,
        action,
    } = args;
    let done: FsDone = match action {
        FsAction::Ls { path } => {
            let l: FsListing =
                call::<op::FsList>(remote, &host, &workspace, &FsPath { path }).await?;
            if json {
                return print_json(&l);
            }
            print!("{}", format_listing(&l));
            return Ok(());
        }
        FsAction::Mkdir { path } => {
            call::<op::FsMkdir>(remote, &host, &workspace, &FsPath { path }).await?
        }
        FsAction::Mv { from, to } => {
            let body = FsRename { from, to };
            call::<op::FsRename>(remote, &host, &workspace, &body).await?
        }
        FsAction::Rmdir { path } => {
            call::<op::FsRmdir>(remote, &host, &workspace, &FsPath { path }).await?
        }
    };
    if json {
        return print_json(&done);
    }
    println!(
        "ok: {}",
        if done.path.is_empty() {
            ".".to_owned()
        } else {
            sanitize(&done.path)
        }
    );
    Ok(())
}

/// Runs `cm-tui git …`.
///
/// # Errors
/// Refusals (with the rule and the argument), git's own failures and transport failures.
pub async fn run_git(remote: &Remote, args: GitArgs) -> Result<(), CommandError> {
    let GitArgs {
        host,
        workspace,
        dir,
        json,
        action,
    } = args;
    let scope = GitScope { dir };
    let (h, w) = (host.as_str(), workspace.as_str());
    match action {
        GitAction::Status => {
            let s: GitStatus = call::<op::GitStatus>(remote, h, w, &scope).await?;
            if json {
                return print_json(&s);
            }
            print!("{}", format_status(&s));
        }
        GitAction::Diff { staged, paths } => {
            let q = GitDiffQuery {
                scope,
                staged,
                paths,
            };
            let d: GitDiff = call::<op::GitDiff>(remote, h, w, &q).await?;
            if json {
                return print_json(&d);
            }
            print!("{}", sanitize_text(&d.patch));
            if d.truncated {
                eprintln!(
                    "(diff cut at {} bytes; name paths to see the rest)",
                    d.patch.len()
                );
            }
        }
        GitAction::Log { limit, rev } => {
            let q = GitLogQuery { scope, limit, rev };
            let l: GitLog = call::<op::GitLog>(remote, h, w, &q).await?;
            if json {
                return print_json(&l);
            }
            for c in &l.commits {
                let short: String = c.id.chars().take(10).collect();
                println!(
                    "{} {:<16} {}",
                    sanitize(&short),
                    sanitize(&c.author),
                    sanitize(&c.subject)
                );
            }
        }
        GitAction::Add { paths } => {
            let s: GitStatus = call::<op::GitAdd>(remote, h, w, &GitAdd { scope, paths }).await?;
            if json {
                return print_json(&s);
            }
            print!("{}", format_status(&s));
        }
        GitAction::Commit { message, all } => {
            let q = GitCommit {
                scope,
                message,
                all,
            };
            let c: GitCommitted = call::<op::GitCommit>(remote, h, w, &q).await?;
            if json {
                return print_json(&c);
            }
            println!(
                "committed {} on {}",
                sanitize(&c.id),
                sanitize(c.branch.as_deref().unwrap_or("a detached HEAD"))
            );
        }
        GitAction::Branch {
            name: None,
            start: _,
            checkout: _,
        } => {
            let b: GitBranches = call::<op::GitBranchList>(remote, h, w, &scope).await?;
            if json {
                return print_json(&b);
            }
            print!("{}", format_branches(&b));
        }
        GitAction::Branch {
            name: Some(name),
            start,
            checkout,
        } => {
            let q = GitBranchCreate {
                scope,
                name,
                start,
                checkout,
            };
            let b: GitBranches = call::<op::GitBranchCreate>(remote, h, w, &q).await?;
            if json {
                return print_json(&b);
            }
            print!("{}", format_branches(&b));
        }
        GitAction::Checkout { branch } => {
            let b: GitBranches =
                call::<op::GitCheckout>(remote, h, w, &GitCheckout { scope, branch }).await?;
            if json {
                return print_json(&b);
            }
            println!(
                "on branch {}",
                sanitize(b.current.as_deref().unwrap_or("(detached)"))
            );
        }
        GitAction::Pull { remote: r, branch } => {
            let q = GitRemoteQuery {
                scope,
                remote: r,
                branch,
            };
            let o: GitOutput = call::<op::GitPull>(remote, h, w, &q).await?;
            if json {
                return print_json(&o);
            }
            println!("{}", sanitize_text(&o.output));
        }
        GitAction::Push { remote: r, branch } => {
            let q = GitRemoteQuery {
                scope,
                remote: r,
                branch,
            };
            let o: GitOutput = call::<op::GitPush>(remote, h, w, &q).await?;
            if json {
                return print_json(&o);
            }
            println!("{}", sanitize_text(&o.output));
        }
        GitAction::Init { path } => {
            let q = GitScope {
                dir: path.unwrap_or(scope.dir),
            };
            let i: GitInitialized = call::<op::GitInit>(remote, h, w, &q).await?;
            if json {
                return print_json(&i);
            }
            let shown = if i.dir.is_empty() { "." } else { &i.dir };
            println!("initialized an empty repository in {}", sanitize(shown));
        }
        GitAction::Clone { url, path } => {
            let q = GitClone {
                url: url.clone(),
                dir: path,
            };
            let target = Target::workspace(h, w);
            let (started, mut events) = remote.stream::<op::GitClone>(&target, &q).await?;
            eprintln!(
                "cloning {} into {} (Ctrl-C aborts and removes the folder)",
                sanitize(&url),
                sanitize(&started.dir)
            );
            let mut shown = false;
            let interrupted = cm_client::signal::shutdown_signal();
            tokio::pin!(interrupted);
            let done = loop {
                let next = tokio::select! {
                    next = events.next() => next?,
                    () = &mut interrupted => {
                        // Closing the connection ends the stream at once: the host stops git
                        // and removes the folder (it would otherwise notice only when the
                        // connection times out).
                        remote.close_flushed().await;
                        if shown {
                            eprintln!();
                        }
                        return Err(CommandError::Interrupted(format!(
                            "clone aborted; the host removes {}",
                            sanitize(&started.dir)
                        )));
                    }
                };
                match next {
                    Some(GitCloneEvent::Progress(p)) => {
                        eprint!("\r\x1b[2K{}", format_progress(&p));
                        shown = true;
                    }
                    Some(GitCloneEvent::Done(c)) => break c,
                    Some(GitCloneEvent::Failed(e)) => {
                        if shown {
                            eprintln!();
                        }
                        return Err(cm_client::LinkError::Refused(e).into());
                    }
                    None => {
                        return Err(CommandError::BadInput(
                            "the host ended the clone without a result; check the folder with \
                             `cm-tui fs … ls`"
                                .into(),
                        ));
                    }
                }
            };
            if shown {
                eprintln!();
            }
            if json {
                return print_json(&done);
            }
            println!("{}", format_cloned(&url, &done));
        }
        GitAction::Config { key, value } => {
            let q = GitConfigSet { scope, key, value };
            let d: GitConfigDone = call::<op::GitConfig>(remote, h, w, &q).await?;
            if json {
                return print_json(&d);
            }
            println!("{} = {}", sanitize(&d.key), sanitize(&d.value));
        }
    }
    Ok(())
}
