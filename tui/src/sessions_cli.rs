//! `cm-tui sessions HOST WORKSPACE [list|rename SES TITLE|delete SES]` and
//! `cm-tui answer HOST WORKSPACE QUESTION_ID ANSWER…`: one request each, text or `--json`.

use crate::command_error::CommandError;
use crate::remote::{Remote, Target};
use crate::view::text::sanitize;
use clap::{Args, Subcommand};
use proto::op;
use proto::ops::{Pending, QuestionReply, RenameSession, SessionInfo};
use serde::Serialize;

/// `cm-tui sessions HOST WORKSPACE …`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cm-tui sessions home-box myproject\n  cm-tui sessions home-box myproject rename ses_… \"fix the flaky test\"\n  cm-tui sessions home-box myproject delete ses_…"
)]
pub struct SessionsArgs {
    /// Host id.
    pub host: String,
    /// Workspace name.
    pub workspace: String,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do [default: list].
    #[command(subcommand)]
    pub action: Option<SessionsAction>,
}

/// The session actions.
#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// List the workspace's sessions (the default).
    #[command(after_help = "Example:\n  cm-tui sessions home-box myproject list --json")]
    List,
    /// Give a session a new title.
    #[command(
        after_help = "Example:\n  cm-tui sessions home-box myproject rename ses_… \"fix the flaky test\""
    )]
    Rename {
        /// Session id.
        session: String,
        /// The new title.
        title: String,
    },
    /// Delete a session and its history in OpenCode (cannot be undone).
    #[command(after_help = "Example:\n  cm-tui sessions home-box myproject delete ses_…")]
    Delete {
        /// Session id.
        session: String,
    },
}

fn print_json<T: Serialize>(value: &T) -> Result<(), CommandError> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs `cm-tui sessions …`.
///
/// # Errors
/// Refusals (unknown session, a session someone else owns) and transport failures.
pub async fn run(remote: &Remote, args: SessionsArgs) -> Result<(), CommandError> {
    let target = Target::workspace(&args.host, &args.workspace);
    match args.action.unwrap_or(SessionsAction::List) {
        SessionsAction::List => crate::commands::sessions(remote, &target, args.json).await,
        SessionsAction::Rename { session, title } => {
            if title.trim().is_empty() {
                return Err(CommandError::BadInput(
                    "the new title is empty; give a few words, e.g. \"fix the flaky test\"".into(),
                ));
            }
            let target = target.with_session(Some(session));
            let renamed: SessionInfo = remote
                .call::<op::SessionRename>(&target, &RenameSession { title })
                .await?;
            if args.json {
                return print_json(&renamed);
            }
            println!("{}: {}", sanitize(&renamed.id), sanitize(&renamed.title));
            Ok(())
        }
        SessionsAction::Delete { session } => {
            let target = target.with_session(Some(session.clone()));
            let deleted: bool = remote.call::<op::SessionDelete>(&target, &()).await?;
            if args.json {
                return print_json(&serde_json::json!({ "session": session, "deleted": deleted }));
            }
            println!("{}: deleted", sanitize(&session));
            Ok(())
        }
    }
}

/// Runs `cm-tui answer HOST WORKSPACE QUESTION_ID ANSWER…` (or `--reject`): one ANSWER per
/// question, in order; several choices of one question separated by commas.
///
/// # Errors
/// No such pending question, refusals and transport failures.
pub async fn answer(
    remote: &Remote,
    target: &Target,
    question_id: String,
    answers: Vec<String>,
    reject: bool,
    json: bool,
) -> Result<(), CommandError> {
    // The relay authorizes answers against the session's owner: find the question's session.
    let pending: Pending = remote.call::<op::PermissionList>(target, &()).await?;
    let Some(question) = pending.questions.iter().find(|q| q.id == question_id) else {
        return Err(CommandError::NoQuestion(question_id));
    };
    let asked = crate::app::question::parse(&question.questions).len();
    let answers = if reject {
        None
    } else {
        if answers.len() != asked {
            return Err(CommandError::BadInput(format!(
                "question {question_id} has {asked} question(s) but {} answer(s) were given; \
                 give one ANSWER per question (see `cm-tui permissions`), or --reject",
                answers.len()
            )));
        }
        Some(
            answers
                .iter()
                .map(|a| a.split(',').map(|c| c.trim().to_owned()).collect())
                .collect(),
        )
    };
    let body = QuestionReply {
        request_id: question_id.clone(),
        answers,
    };
    let target = target.clone().with_session(Some(question.session.clone()));
    let _: bool = remote.call::<op::QuestionReply>(&target, &body).await?;
    let done = if reject { "rejected" } else { "answered" };
    if json {
        return print_json(&serde_json::json!({ "request_id": question_id, "result": done }));
    }
    println!("{}: {done}", sanitize(&question_id));
    Ok(())
}
