//! `cm-tui attention [--json]`: everything waiting for a human on every online host
//! (permission requests, questions, turns that failed, OpenCode that gave up), each with the
//! exact `cm-tui` commands that answer it, so a phone's terminal answers without the full
//! screen.
//!
//! The items go through the app's own attention model ([`Attention`]: the same
//! `set_pending` / `set_opencode` the panel is fed from, the same one-line text), so the list
//! says what the panel would say; only the reading is different (one request per workspace
//! instead of watches).

use crate::app::attention::{ABORTED, Attention, Item, ItemKind};
use crate::call::WatchKey;
use crate::command_error::CommandError;
use crate::remote::{Remote, Target};
use crate::view::text::sanitize;
use proto::ids::HostId;
use proto::op;
use proto::ops::{
    Message, MessagesQuery, OpencodeState, Pending, SessionInfo, SessionStatus, WorkspaceInfo,
};
use proto::text::RemoteText;
use serde::Serialize;

/// One thing waiting, with the commands that answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    /// `permission`, `question`, `turn_failed` or `opencode_failed`.
    pub kind: &'static str,
    /// Host id.
    pub host: String,
    /// Workspace name.
    pub workspace: String,
    /// The session it belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The session's title, when known and not empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The request id (`per_…`, `que_…`), for permissions and questions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What it is, in one line (remote text, control characters removed).
    pub text: String,
    /// The commands that answer it, the usual answer first; the last one shows more (the
    /// diff, the whole command, the choices) where there is more to see.
    pub commands: Vec<String>,
}

/// A host that was not asked (offline, or its list could not be read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unchecked {
    /// Host id (with the workspace, when only that one failed).
    pub host: String,
    /// Workspace name, when only that workspace could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Why.
    pub reason: String,
}

/// The whole answer of `cm-tui attention`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// What waits, most urgent first.
    pub waiting: Vec<Waiting>,
    /// Hosts and workspaces that could not be asked.
    pub unchecked: Vec<Unchecked>,
}

/// Runs `cm-tui attention`.
///
/// # Errors
/// Transport failures reading the host list; a host or workspace that cannot be read is
/// reported in [`Report::unchecked`] instead.
pub async fn run(remote: &Remote, json: bool) -> Result<(), CommandError> {
    let report = gather(remote).await?;
    if json {
        println!("{}", proto::text::json_pretty(&report)?);
    } else {
        print!("{}", format(&report));
    }
    Ok(())
}

/// Reads every online host's workspaces and what waits in each.
///
/// # Errors
/// Transport failures reading the host list.
pub async fn gather(remote: &Remote) -> Result<Report, CommandError> {
    let hosts = crate::connect::host_list(remote.conn()).await?;
    let mut attention = Attention::default();
    let mut unchecked = Vec::new();
    let now = cm_client::time::now_ms();
    for host in &hosts.hosts {
        if !host.online {
            unchecked.push(Unchecked {
                host: sanitize(host.host.as_str()),
                workspace: None,
                reason: "offline".into(),
            });
            continue;
        }
        let target = Target {
            host: host.host.to_string(),
            ..Target::default()
        };
        let workspaces: Vec<WorkspaceInfo> =
            match remote.call::<op::WorkspaceList>(&target, &()).await {
                Ok(list) => list,
                Err(e) => {
                    unchecked.push(Unchecked {
                        host: sanitize(host.host.as_str()),
                        workspace: None,
                        reason: sanitize(&e.to_string()),
                    });
                    continue;
                }
            };
        for w in &workspaces {
            let watch = WatchKey::new(&host.host, &w.name);
            attention.set_opencode(&watch, &w.opencode, now);
            // Only a running OpenCode holds requests; asking another would start it.
            if w.opencode.state != OpencodeState::Ready {
                continue;
            }
            if let Err(reason) = read_workspace(remote, &host.host, w, &mut attention, now).await {
                unchecked.push(Unchecked {
                    host: sanitize(host.host.as_str()),
                    workspace: Some(sanitize(&w.name)),
                    reason,
                });
            }
        }
    }
    Ok(Report {
        waiting: attention
            .items()
            .iter()
            .map(|i| waiting(&attention, i))
            .collect(),
        unchecked,
    })
}

/// How far back a session's last turn is looked at for a failure.
const FAILED_TURN_WINDOW_MS: u64 = 24 * 3_600_000;

/// At most this many sessions of a workspace are looked at for a failed last turn (the most
/// recently active ones).
const FAILED_TURN_SESSIONS: usize = 20;

/// Feeds one workspace's pending requests, its failed last turns and its session titles.
async fn read_workspace(
    remote: &Remote,
    host: &HostId,
    w: &WorkspaceInfo,
    attention: &mut Attention,
    now: u64,
) -> Result<(), String> {
    let target = Target::workspace(host.as_str(), &w.name);
    let watch = WatchKey::new(host, &w.name);
    let pending: Pending = remote
        .call::<op::PermissionList>(&target, &())
        .await
        .map_err(|e| sanitize(&e.to_string()))?;
    attention.set_pending(&watch, pending, now);
    let sessions: Vec<SessionInfo> = remote
        .call::<op::SessionList>(&target, &())
        .await
        .map_err(|e| sanitize(&e.to_string()))?;
    for s in &sessions {
        attention.set_title(&watch, &s.id, &s.title);
    }
    // A turn that failed is news until the session runs again: its last message says so.
    let mut recent: Vec<&SessionInfo> = sessions
        .iter()
        .filter(|s| matches!(s.status, SessionStatus::Idle))
        .filter(|s| now.saturating_sub(s.updated_ms) < FAILED_TURN_WINDOW_MS)
        .collect();
    recent.sort_by_key(|s| std::cmp::Reverse(s.updated_ms));
    recent.truncate(FAILED_TURN_SESSIONS);
    for s in recent {
        let target = target.clone().with_session(Some(s.id.clone()));
        let last: Vec<Message> = remote
            .call::<op::Messages>(&target, &MessagesQuery { limit: Some(1) })
            .await
            .map_err(|e| sanitize(&e.to_string()))?;
        let failed = last
            .last()
            .filter(|m| m.role == "assistant")
            .and_then(|m| m.error.as_deref())
            .filter(|name| *name != ABORTED);
        if let Some(name) = failed {
            let kind = ItemKind::TurnFailed {
                session: s.id.clone(),
                error: RemoteText::new(name),
            };
            attention.add(Item::new(&watch, kind, now));
        }
    }
    Ok(())
}

fn waiting(attention: &Attention, item: &Item) -> Waiting {
    let note = item.notification();
    let (host, workspace) = (note.host, note.workspace);
    let title = item
        .session()
        .and_then(|s| attention.title(&item.watch, s))
        .filter(|t| !t.is_empty())
        .map(sanitize);
    Waiting {
        kind: note.kind,
        // Remote names are quoted for the shell; control characters go all the same.
        commands: commands(item, &host, &workspace)
            .iter()
            .map(|c| sanitize(c))
            .collect(),
        id: item.request_id().map(sanitize),
        session: note.session.as_deref().map(sanitize),
        host: sanitize(&host),
        workspace: sanitize(&workspace),
        title,
        text: note.text,
    }
}

/// The commands that answer `item`, ready to paste.
pub fn commands(item: &Item, host: &str, workspace: &str) -> Vec<String> {
    let at = format!("{} {}", shell_word(host), shell_word(workspace));
    match &item.kind {
        ItemKind::Permission(p) => {
            let id = shell_word(&p.id);
            // `--`: an id from the host that starts with `-` stays an id, never an option.
            vec![
                format!("cm-tui approve {at} -- {id}"),
                format!("cm-tui reject {at} -- {id}"),
                format!("cm-tui permissions {at}"),
            ]
        }
        ItemKind::Question(q) => {
            let id = shell_word(&q.id);
            let first = first_choice(&q.questions).map_or_else(
                || "ANSWER".to_owned(),
                |label| shell_word(&sanitize(&label)),
            );
            vec![
                format!("cm-tui answer {at} -- {id} {first}"),
                format!("cm-tui answer {at} --reject -- {id}"),
                format!("cm-tui permissions {at}"),
            ]
        }
        ItemKind::OpencodeFailed { .. } => vec![
            format!("cm-tui opencode {at} start"),
            format!("cm-tui opencode {at} status"),
        ],
        ItemKind::TurnFailed { session, .. } => {
            let session = shell_word(session);
            vec![
                format!("cm-tui send {at} --session {session} 'try again'"),
                format!("cm-tui messages {at} {session} --limit 2"),
            ]
        }
        ItemKind::Finished { session } => {
            vec![format!("cm-tui messages {at} {}", shell_word(session))]
        }
    }
}

/// The first option of the first question, when it offers options.
fn first_choice(questions: &serde_json::Value) -> Option<String> {
    questions
        .as_array()?
        .first()?
        .get("options")?
        .as_array()?
        .first()?
        .get("label")?
        .as_str()
        .map(str::to_owned)
}

/// `s` as one shell word: bare when it is plainly safe, else single-quoted.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@,+=%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The text form: a block per item (what, where, then the commands), narrow enough for a
/// phone (no table), then the hosts that were not asked.
pub fn format(report: &Report) -> String {
    let mut out = String::new();
    if report.waiting.is_empty() {
        out.push_str("nothing waits for you\n");
    }
    for (i, w) in report.waiting.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let marker = match w.kind {
            "permission" => "⚠",
            "question" => "?",
            "opencode_failed" | "turn_failed" => "✗",
            _ => "✓",
        };
        out.push_str(&format!("{marker} {}\n", w.text));
        let mut place = format!("  {}/{}", w.host, w.workspace);
        match (&w.title, &w.session) {
            (Some(title), _) => place.push_str(&format!(" · {title}")),
            (None, Some(session)) => place.push_str(&format!(" · {session}")),
            (None, None) => {}
        }
        out.push_str(&place);
        out.push('\n');
        for c in &w.commands {
            out.push_str(&format!("  {c}\n"));
        }
    }
    for u in &report.unchecked {
        let place = match &u.workspace {
            Some(w) => format!("{}/{w}", u.host),
            None => u.host.clone(),
        };
        out.push_str(&format!("(not checked: {place}: {})\n", u.reason));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ops::{PermissionRequest, QuestionRequest};

    fn item(kind: ItemKind) -> Item {
        Item::new(&WatchKey::new(&HostId::from("home-box"), "api"), kind, 1)
    }

    #[test]
    fn a_permission_is_answered_by_approve_with_host_workspace_and_id() {
        let p = PermissionRequest {
            id: "per_1".into(),
            session: "ses_1".into(),
            permission: "bash".into(),
            patterns: vec!["ls".into()],
            metadata: serde_json::json!({ "command": "ls -la" }),
            always: vec![],
        };
        let cmds = commands(&item(ItemKind::Permission(p)), "home-box", "api");
        assert_eq!(cmds[0], "cm-tui approve home-box api -- per_1");
        assert_eq!(cmds[1], "cm-tui reject home-box api -- per_1");
    }

    #[test]
    fn a_question_offers_its_first_choice_quoted_for_the_shell() {
        let q = QuestionRequest {
            id: "que_1".into(),
            session: "ses_1".into(),
            questions: serde_json::json!([{ "question": "Which?", "options": [
                { "label": "Dark red" }, { "label": "Blue" }
            ]}]),
        };
        let cmds = commands(&item(ItemKind::Question(q)), "home-box", "my api");
        assert_eq!(
            cmds[0],
            "cm-tui answer home-box 'my api' -- que_1 'Dark red'"
        );
        assert_eq!(cmds[1], "cm-tui answer home-box 'my api' --reject -- que_1");
    }

    #[test]
    fn an_id_or_a_choice_that_looks_like_an_option_stays_an_argument() {
        let q = QuestionRequest {
            id: "-que_1".into(),
            session: "ses_1".into(),
            questions: serde_json::json!([{ "question": "Which?", "options": [
                { "label": "--reject" }
            ]}]),
        };
        let cmds = commands(&item(ItemKind::Question(q)), "home-box", "api");
        assert_eq!(cmds[0], "cm-tui answer home-box api -- -que_1 --reject");
    }

    #[test]
    fn escape_sequences_in_remote_names_never_reach_the_terminal() {
        let mut attention = Attention::default();
        let watch = WatchKey::new(&HostId::from("box"), "evil\u{1b}]0;pwned\u{7}");
        attention.add(Item::new(
            &watch,
            ItemKind::TurnFailed {
                session: "ses_\u{1b}[2J".into(),
                error: RemoteText::new("APIError\u{1b}[31m"),
            },
            1,
        ));
        let report = Report {
            waiting: vec![waiting(&attention, &attention.items()[0])],
            unchecked: vec![],
        };
        let text = format(&report);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
    }

    #[test]
    fn shell_words_cannot_break_out_of_their_quotes() {
        assert_eq!(shell_word("box"), "box");
        assert_eq!(shell_word("it's; rm -rf ~"), r"'it'\''s; rm -rf ~'");
        assert_eq!(shell_word(""), "''");
    }
}
