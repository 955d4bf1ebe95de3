//! The scripting commands that drive OpenCode on a host (`workspaces`, `sessions`, `new`,
//! `send`, `watch`, `permissions`, `approve`/`reject`, `abort`, `diff`, `messages`,
//! `opencode HOST WORKSPACE start|stop|status`): one request each, printed as text or `--json`.

pub use crate::command_error::CommandError;
use crate::remote::{Remote, Target};
use crate::view::text::{sanitize, sanitize_text};
use proto::event::Event;
use proto::header::Op;
use proto::op;
use proto::ops::{
    Aborted, CreateSession, DiffQuery, FileDiff, Message, MessagesQuery, OpencodeInfo, Part,
    Pending, PermissionAnswer, PermissionReply, SessionInfo, SessionStatus, WorkspaceInfo,
};
use serde::Serialize;

mod send;

pub use send::{PromptPick, send};

fn print_json<T: Serialize>(value: &T) -> Result<(), CommandError> {
    println!("{}", proto::text::json_pretty(value)?);
    Ok(())
}

fn status_text(s: &SessionStatus) -> String {
    match s {
        SessionStatus::Idle => "idle".into(),
        SessionStatus::Busy => "busy".into(),
        SessionStatus::Retry { attempt, .. } => format!("retry #{attempt}"),
    }
}

/// `workspaces HOST`.
///
/// # Errors
/// Refusals and transport failures.
pub async fn workspaces(remote: &Remote, host: &str, json: bool) -> Result<(), CommandError> {
    let target = Target {
        host: host.to_owned(),
        ..Target::default()
    };
    let list: Vec<WorkspaceInfo> = remote.call::<op::WorkspaceList>(&target, &()).await?;
    if json {
        return print_json(&list);
    }
    println!(
        "{:<20} {:<10} {:<10} {:<10} NOTE",
        "WORKSPACE", "ROOT", "OPENCODE", "SANDBOX"
    );
    for w in &list {
        let state = format!("{:?}", w.opencode.state).to_lowercase();
        println!(
            "{:<20} {:<10} {:<10} {:<10} {}",
            sanitize(&w.name),
            if w.available { "ok" } else { "missing" },
            state,
            w.sandbox
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), |s| sanitize(&s.state)),
            sanitize(note_after(
                &state,
                w.opencode.last_error.as_deref().unwrap_or("")
            ))
        );
    }
    Ok(())
}

/// OpenCode's note without a leading repeat of its state ("stopped: the credential … was
/// revoked" next to the state "stopped"), so the state is said once.
fn note_after<'a>(state: &str, note: &'a str) -> &'a str {
    note.strip_prefix(state)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(note)
}

/// `sessions HOST WORKSPACE`.
///
/// # Errors
/// Refusals and transport failures.
pub async fn sessions(remote: &Remote, target: &Target, json: bool) -> Result<(), CommandError> {
    let list: Vec<SessionInfo> = remote.call::<op::SessionList>(target, &()).await?;
    if json {
        return print_json(&list);
    }
    println!("{:<32} {:<8} TITLE", "SESSION", "STATUS");
    for s in &list {
        println!(
            "{:<32} {:<8} {}",
            sanitize(&s.id),
            status_text(&s.status),
            sanitize(&s.title)
        );
    }
    Ok(())
}

/// `new HOST WORKSPACE [--title T]`: returns the new session.
///
/// # Errors
/// Refusals and transport failures.
pub async fn new_session(
    remote: &Remote,
    target: &Target,
    title: Option<String>,
) -> Result<SessionInfo, CommandError> {
    Ok(remote
        .call::<op::SessionCreate>(target, &CreateSession { title })
        .await?)
}

/// One line for an event.
pub fn describe(e: &Event) -> String {
    match e {
        Event::SessionUpdated { session } => {
            format!("session {} updated: {}", session.id, session.title)
        }
        Event::SessionDeleted { session } => format!("session {session} deleted"),
        Event::SessionStatus { session, status } => {
            format!("session {session} {}", status_text(status))
        }
        Event::SessionIdle { session } => format!("session {session} idle"),
        Event::SessionError {
            session,
            name,
            message,
        } => format!("session {session} error {name}: {message}"),
        Event::MessageUpdated {
            message_id,
            role,
            finish,
            ..
        } => {
            format!(
                "message {message_id} ({role}){}",
                finish
                    .as_deref()
                    .map(|f| format!(" finished: {f}"))
                    .unwrap_or_default()
            )
        }
        Event::PartUpdated { part, .. } => match part {
            Part::Text { text, .. } => format!("text: {text}"),
            Part::Reasoning { .. } => "reasoning".into(),
            Part::Tool { tool, status, .. } => format!("tool {tool}: {status}"),
            Part::Patch { files, .. } => format!("patch: {}", files.join(", ")),
            Part::Other { kind, .. } => kind.clone(),
        },
        Event::TextDelta { delta, .. } => format!("delta: {delta:?}"),
        Event::PermissionAsked { request } => {
            format!(
                "permission asked {} {} {}",
                request.id,
                request.permission,
                request.patterns.join(" ")
            )
        }
        Event::PermissionReplied {
            request_id, answer, ..
        } => format!("permission {request_id} answered {answer:?}"),
        Event::QuestionAsked { request } => format!("question asked {}", request.id),
        Event::QuestionReplied { request_id, .. } => format!("question {request_id} answered"),
        Event::FileEdited { file } => format!("file edited {file}"),
        Event::Opencode { info } => format!(
            "opencode {:?}{}",
            info.state,
            info.last_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ),
        Event::Resync { reason } => format!("resync: {reason}"),
    }
}

/// `permissions HOST WORKSPACE`.
///
/// # Errors
/// Refusals and transport failures.
pub async fn permissions(remote: &Remote, target: &Target, json: bool) -> Result<(), CommandError> {
    let pending: Pending = remote.call::<op::PermissionList>(target, &()).await?;
    if json {
        return print_json(&pending);
    }
    // Each request with what it would do (diff, command and folder), so nobody approves blind.
    crate::grants_cli::print_pending(&pending, &mut std::io::stdout().lock())?;
    Ok(())
}

/// `approve|reject HOST WORKSPACE REQUEST_ID`.
///
/// # Errors
/// Refusals (unknown or already answered request) and transport failures.
pub async fn answer(
    remote: &Remote,
    target: &Target,
    request_id: String,
    answer: PermissionAnswer,
    message: Option<String>,
    json: bool,
) -> Result<(), CommandError> {
    // The relay authorizes answers against the session's owner: find the request's session.
    let pending: Pending = remote.call::<op::PermissionList>(target, &()).await?;
    let Some(session) = pending
        .permissions
        .iter()
        .find(|p| p.id == request_id)
        .map(|p| p.session.clone())
    else {
        return Err(CommandError::NotPending(request_id));
    };
    let body = PermissionReply {
        request_id: request_id.clone(),
        answer,
        message,
        // `approve --always` goes through grants_cli::approve_always (confirmed, with patterns).
        always_patterns: None,
    };
    let target = target.clone().with_session(Some(session));
    let _: bool = remote.call::<op::PermissionReply>(&target, &body).await?;
    let done = match answer {
        PermissionAnswer::Once => "allowed once",
        PermissionAnswer::Always => "allowed always",
        PermissionAnswer::Reject => "rejected",
    };
    if json {
        return print_json(&serde_json::json!({ "request_id": request_id, "answer": answer }));
    }
    println!("{request_id}: {done}");
    Ok(())
}

/// `abort HOST WORKSPACE SESSION`.
///
/// # Errors
/// Refusals and transport failures.
pub async fn abort(remote: &Remote, target: &Target, json: bool) -> Result<(), CommandError> {
    let aborted: Aborted = remote.call::<op::Abort>(target, &()).await?;
    if json {
        return print_json(&aborted);
    }
    match aborted.rejected_permissions.len() {
        0 => println!("aborted"),
        n => println!(
            "aborted; rejected {}",
            crate::view::text::count(n, "pending permission request")
        ),
    }
    Ok(())
}

/// `diff HOST WORKSPACE SESSION [--message-id M] [--worktree]`.
///
/// # Errors
/// Refusals and transport failures.
pub async fn diff(
    remote: &Remote,
    target: &Target,
    query: DiffQuery,
    json: bool,
) -> Result<(), CommandError> {
    let files: Vec<FileDiff> = remote.call::<op::Diff>(target, &query).await?;
    if json {
        return print_json(&files);
    }
    if files.is_empty() {
        println!("no changes");
    }
    for f in &files {
        println!(
            "=== {} ({}, +{} -{})",
            sanitize(&f.file),
            sanitize(&f.status.to_string()),
            f.additions,
            f.deletions
        );
        print!("{}", sanitize_text(&f.patch));
        if !f.patch.ends_with('\n') {
            println!();
        }
    }
    Ok(())
}

/// `messages HOST WORKSPACE SESSION`.
///
/// # Errors
/// Refusals and transport failures.
pub async fn messages(
    remote: &Remote,
    target: &Target,
    limit: Option<u32>,
    json: bool,
) -> Result<(), CommandError> {
    let list: Vec<Message> = remote
        .call::<op::Messages>(target, &MessagesQuery { limit })
        .await?;
    if json {
        return print_json(&list);
    }
    for m in &list {
        println!(
            "{}",
            sanitize(&format!(
                "--- {} {}{}",
                m.role,
                m.id,
                m.error
                    .as_deref()
                    .map(|e| format!(" [{e}]"))
                    .unwrap_or_default()
            ))
        );
        for p in &m.parts {
            match p {
                Part::Text { text, .. } => println!("{}", sanitize_text(text)),
                Part::Tool {
                    tool,
                    status,
                    error,
                    ..
                } => {
                    println!(
                        "{}",
                        sanitize(&format!(
                            "[tool {tool}: {status}{}]",
                            error
                                .as_deref()
                                .map(|e| format!(": {e}"))
                                .unwrap_or_default()
                        ))
                    );
                }
                Part::Patch { files, .. } => {
                    println!("[patch: {}]", sanitize(&files.join(", ")));
                }
                Part::Reasoning { .. } | Part::Other { .. } => {}
            }
        }
    }
    Ok(())
}

/// `opencode HOST WORKSPACE start|stop|status`.
///
/// # Errors
/// Refusals and transport failures.
pub async fn opencode(
    remote: &Remote,
    target: &Target,
    op: Op,
    json: bool,
) -> Result<(), CommandError> {
    let info: OpencodeInfo = match op {
        Op::OpencodeStart => remote.call::<op::OpencodeStart>(target, &()).await?,
        Op::OpencodeStop => remote.call::<op::OpencodeStop>(target, &()).await?,
        _ => remote.call::<op::OpencodeStatus>(target, &()).await?,
    };
    if json {
        return print_json(&info);
    }
    let state = format!("{:?}", info.state).to_lowercase();
    let note = info.last_error.as_deref().map(|e| note_after(&state, e));
    println!(
        "{}: opencode {state}{}",
        sanitize(&info.workspace),
        note.map(|e| format!(" ({})", sanitize(e)))
            .unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::note_after;

    #[test]
    fn a_note_does_not_repeat_the_state() {
        let note = "stopped: the credential that started it (c1) was revoked";
        assert_eq!(
            note_after("stopped", note),
            "the credential that started it (c1) was revoked"
        );
        assert_eq!(note_after("failed", note), note);
        assert_eq!(note_after("ready", ""), "");
    }
}
