//! `cm-tui send`: a prompt with its model and agent pick, and (with `--wait`) the turn's answer
//! printed as it streams.

use super::{CommandError, new_session, print_json};
use crate::remote::{EventStream, Remote, Target};
use crate::view::text::{sanitize, sanitize_text};
use cm_client::LinkError;
use cm_client::time::random_u64;
use proto::event::Event;
use proto::op;
use proto::ops::{Part, Prompt};
use proto::queue::PromptOutcome;
use std::collections::{HashMap, HashSet};
use std::io::Write;

/// A prompt's model (`provider/model`) and OpenCode agent; `None` leaves the host's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptPick {
    /// `provider/model`.
    pub model: Option<String>,
    /// Agent name, e.g. `plan`.
    pub agent: Option<String>,
}

impl PromptPick {
    /// Refuses a malformed pick before anything is sent (a new session included).
    ///
    /// # Errors
    /// [`CommandError::BadInput`] naming the expected form.
    pub fn check(&self) -> Result<(), CommandError> {
        if let Some(m) = &self.model
            && !m
                .split_once('/')
                .is_some_and(|(p, m)| !p.is_empty() && !m.is_empty())
        {
            return Err(CommandError::BadInput(format!(
                "--model {m:?} must look like provider/model; `cm-tui models HOST WORKSPACE` lists them"
            )));
        }
        if self.agent.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err(CommandError::BadInput(
                "--agent is empty; name an agent, e.g. plan or build".into(),
            ));
        }
        Ok(())
    }
}

/// `send HOST WORKSPACE [--session S] TEXT [--model P/M] [--agent A] [--wait]`.
///
/// # Errors
/// Refusals (among them a model or agent the host does not offer), transport failures, or
/// (with `wait`) a failed or aborted turn.
pub async fn send(
    remote: &Remote,
    target: &Target,
    text: String,
    pick: &PromptPick,
    wait: bool,
    json: bool,
) -> Result<(), CommandError> {
    pick.check()?;
    // Subscribe before prompting, so no delta of the answer can be missed.
    let events = if wait {
        match remote.watch(target, None).await {
            Ok(e) => Some(e),
            // An offline host can still take a queued prompt (nothing to wait for then).
            Err(LinkError::Refused(e))
                if e.code == proto::wire_error::ErrorCode::HostOffline
                    && target.session.is_some() =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    let session = match &target.session {
        Some(s) => s.clone(),
        None => {
            let created = match new_session(remote, target, None).await {
                Err(CommandError::Link(LinkError::Refused(e)))
                    if e.code == proto::wire_error::ErrorCode::HostOffline =>
                {
                    return Err(CommandError::OfflineNewSession(target.host.clone()));
                }
                other => other?,
            };
            eprintln!("new session {}", sanitize(&created.id));
            created.id
        }
    };
    let target = target.clone().with_session(Some(session.clone()));
    let prompt = Prompt {
        text,
        idempotency_key: format!("{:016x}{:016x}", random_u64(), random_u64()),
        model: pick.model.clone(),
        agent: pick.agent.clone(),
    };
    let accepted = match remote.call::<op::Prompt>(&target, &prompt).await? {
        PromptOutcome::Accepted(a) => a,
        PromptOutcome::Queued { queued } => {
            // The host is offline: the relay delivers it when the host is back.
            if json {
                return print_json(&queued);
            }
            println!(
                "{}",
                crate::queue_cli::queued_line(&queued, cm_client::time::now_ms())
            );
            return Ok(());
        }
    };
    match events {
        None if json => print_json(&accepted),
        None => {
            println!("prompt accepted in session {}", sanitize(&accepted.session));
            Ok(())
        }
        Some(events) => follow_turn(events, &target, &session, &accepted.message_id, json).await,
    }
}

/// Whether `event` shows that the turn of the prompt whose user message is `ours` has begun:
/// OpenCode announces our user message first. Until then, a busy or idle of the session
/// belongs to an earlier turn (e.g. the tail of one re-adopted after an agent restart) and
/// must not end the wait. A resync may have lost the announcement: counted as begun, so the
/// wait cannot hang.
fn turn_began(event: &Event, ours: &str) -> bool {
    match event {
        Event::MessageUpdated { message_id, .. } => message_id == ours,
        Event::Resync { .. } => true,
        _ => false,
    }
}

/// Prints a turn's answer as it streams and returns when the session is idle again after the
/// turn of our prompt (user message `ours`) began.
async fn follow_turn(
    mut events: EventStream,
    target: &Target,
    session: &str,
    ours: &str,
    json: bool,
) -> Result<(), CommandError> {
    let mut began = false;
    let mut out = std::io::stdout().lock();
    let mut assistant: HashSet<String> = HashSet::new();
    let mut printed: HashMap<String, String> = HashMap::new();
    let mut tool_state: HashMap<String, String> = HashMap::new();
    let mut failure: Option<String> = None;
    while let Some(frame) = events.next().await? {
        if frame.event.session().is_some_and(|s| s != session) {
            continue;
        }
        if json {
            writeln!(out, "{}", proto::text::json_line(&frame)?)?;
        }
        began = began || turn_began(&frame.event, ours);
        match frame.event {
            Event::MessageUpdated {
                message_id, role, ..
            } if role == "assistant" => {
                assistant.insert(message_id);
            }
            Event::TextDelta {
                message_id,
                part_id,
                delta,
                ..
            } if !json => {
                // OpenCode streams deltas only for the assistant's parts.
                assistant.insert(message_id);
                write!(out, "{}", sanitize_text(&delta))?;
                out.flush()?;
                printed.entry(part_id).or_default().push_str(&delta);
            }
            Event::PartUpdated {
                message_id,
                part: Part::Text { id, text },
                ..
            } if !json && assistant.contains(&message_id) => {
                // Reconcile with the final text: print whatever the deltas did not carry.
                let done = printed.entry(id).or_default();
                if let Some(rest) = text.strip_prefix(done.as_str()) {
                    write!(out, "{}", sanitize_text(rest))?;
                    out.flush()?;
                    done.push_str(rest);
                }
            }
            Event::PartUpdated {
                part: Part::Tool {
                    id, tool, status, ..
                },
                ..
            } if !json && tool_state.get(&id) != Some(&status) => {
                eprintln!("[tool {}: {}]", sanitize(&tool), sanitize(&status));
                tool_state.insert(id, status);
            }
            Event::PermissionAsked { request } if !json => {
                eprintln!(
                    "{}",
                    sanitize(&format!(
                        "permission requested: {} {} {} — answer with `cm-tui approve|reject {} {} {}`",
                        request.id,
                        request.permission,
                        request.patterns.join(" "),
                        target.host,
                        target.workspace.as_deref().unwrap_or("WORKSPACE"),
                        request.id
                    ))
                );
            }
            Event::QuestionAsked { request } if !json => {
                for line in crate::grants_cli::question_lines(&request) {
                    eprintln!("{line}");
                }
                eprintln!(
                    "answer with `cm-tui answer {} {} {} ANSWER…` (or --reject)",
                    sanitize(&target.host),
                    sanitize(target.workspace.as_deref().unwrap_or("WORKSPACE")),
                    sanitize(&request.id)
                );
            }
            Event::SessionError { name, message, .. } => {
                failure = Some(if name == "MessageAbortedError" {
                    "aborted".to_owned()
                } else {
                    format!("{name}: {message}")
                });
            }
            Event::SessionIdle { .. } if began => break,
            Event::Resync { reason } if !json => eprintln!("[resync: {}]", sanitize(&reason)),
            _ => {}
        }
    }
    if !json {
        writeln!(out)?;
    }
    match failure {
        Some(f) => Err(CommandError::Turn(f)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::{Event, PromptPick, turn_began};

    #[test]
    fn only_our_user_message_or_a_resync_begins_the_turn_an_earlier_idle_does_not() {
        use proto::ops::SessionStatus;
        let ours = "msg_ours";
        let earlier = [
            Event::SessionStatus {
                session: "ses_1".into(),
                status: SessionStatus::Busy,
            },
            Event::MessageUpdated {
                session: "ses_1".into(),
                message_id: "msg_before".into(),
                role: "assistant".into(),
                finish: Some("stop".into()),
            },
            Event::SessionIdle {
                session: "ses_1".into(),
            },
        ];
        assert!(!earlier.iter().any(|e| turn_began(e, ours)));
        assert!(turn_began(
            &Event::MessageUpdated {
                session: "ses_1".into(),
                message_id: ours.into(),
                role: "user".into(),
                finish: None,
            },
            ours
        ));
        assert!(turn_began(
            &Event::Resync {
                reason: "agent restarted".into()
            },
            ours
        ));
    }

    #[test]
    fn a_malformed_model_or_empty_agent_is_refused_before_sending() {
        let pick = |model: Option<&str>, agent: Option<&str>| PromptPick {
            model: model.map(str::to_owned),
            agent: agent.map(str::to_owned),
        };
        assert!(pick(Some("mock/m"), Some("plan")).check().is_ok());
        assert!(pick(None, None).check().is_ok());
        for bad in ["mock", "/m", "mock/"] {
            let e = pick(Some(bad), None).check().unwrap_err().to_string();
            assert!(
                e.contains("provider/model") && e.contains("cm-tui models"),
                "{e}"
            );
        }
        assert!(pick(None, Some(" ")).check().is_err());
    }
}
