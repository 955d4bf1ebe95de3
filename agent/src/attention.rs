//! What needs a human, told to the relay so it can notify users with no TUI open (issue #22):
//! a permission or question waiting, a turn finished or failed, OpenCode crashed or given up.
//! Metadata only (workspace, session, request id, kind); the session title only for a
//! relay-trusted host — a zero-trust host tells its relay no title. Live events only: what
//! happened while the relay was away is not replayed as fresh news.

use crate::workspaces::Workspaces;
use proto::event::Event;
use proto::message::Control;
use proto::notify::{Attention, AttentionKind};
use proto::ops::OpencodeState;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Session titles remembered per workspace (for relay-trusted hosts); beyond, it starts over.
const MAX_TITLES: usize = 4_096;

/// What an event in `workspace` needs from a human, if anything; `titles` is updated from the
/// event and gives the title (`None` when titles are not to be sent).
pub fn attention_of(
    workspace: &str,
    event: &Event,
    titles: Option<&mut HashMap<String, String>>,
) -> Option<Attention> {
    let (kind, session, request) = match event {
        Event::SessionUpdated { session } => {
            if let Some(titles) = titles {
                if titles.len() >= MAX_TITLES {
                    titles.clear();
                }
                titles.insert(session.id.clone(), session.title.clone());
            }
            return None;
        }
        Event::PermissionAsked { request } => (
            AttentionKind::PermissionWaiting,
            Some(request.session.clone()),
            Some(request.id.clone()),
        ),
        Event::QuestionAsked { request } => (
            AttentionKind::QuestionWaiting,
            Some(request.session.clone()),
            Some(request.id.clone()),
        ),
        Event::SessionIdle { session } => {
            (AttentionKind::TurnFinished, Some(session.clone()), None)
        }
        Event::SessionError { session, .. } => {
            (AttentionKind::TurnFailed, Some(session.clone()), None)
        }
        Event::Opencode { info } => match info.state {
            OpencodeState::Backoff => (AttentionKind::OpencodeCrashed, None, None),
            OpencodeState::Failed => (AttentionKind::OpencodeGaveUp, None, None),
            _ => return None,
        },
        _ => return None,
    };
    let title = match (titles, &session) {
        (Some(t), Some(s)) => t.get(s).filter(|t| !t.is_empty()).cloned(),
        _ => None,
    };
    Some(Attention {
        workspace: workspace.to_owned(),
        session,
        title,
        kind,
        request,
    })
}

/// Whether this link is the one that tells the relays (an agent on several relays tells
/// one, or each relay would notify the same users of the same thing); asked per notice.
pub type Teller = Arc<dyn Fn() -> bool + Send + Sync>;

/// Sends the attention notices of every workspace (also those added later) into `tx` until
/// the receiver is gone; a notice that comes while `tells` says no is left to another link.
pub async fn forward(workspaces: Arc<Workspaces>, tx: mpsc::Sender<Control>, tells: Teller) {
    let send_titles = workspaces.trust().is_none();
    let mut changes = workspaces.changes();
    let mut subscribed: Vec<Arc<crate::hub::EventHub>> = Vec::new();
    loop {
        changes.borrow_and_update();
        for ws in workspaces.iter() {
            if subscribed.iter().any(|h| Arc::ptr_eq(h, &ws.hub)) {
                continue;
            }
            subscribed.push(Arc::clone(&ws.hub));
            let mut sub = ws.hub.subscribe(None);
            let (tx, name, tells) = (tx.clone(), ws.workspace.name.clone(), Arc::clone(&tells));
            tokio::spawn(async move {
                let mut titles = send_titles.then(HashMap::new);
                loop {
                    let frame = tokio::select! {
                        () = tx.closed() => return,
                        frame = sub.next() => frame,
                    };
                    let Some(frame) = frame else { return };
                    if let Some(attention) = attention_of(&name, &frame.event, titles.as_mut())
                        && tells()
                        && tx.send(Control::Attention { attention }).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
        tokio::select! {
            () = tx.closed() => return,
            Ok(()) = changes.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ops::{PermissionRequest, SessionInfo, SessionStatus};

    fn asked() -> Event {
        Event::PermissionAsked {
            request: PermissionRequest {
                id: "per_1".into(),
                session: "ses_1".into(),
                permission: "bash".into(),
                patterns: vec!["rm -rf /secret-project".into()],
                metadata: serde_json::json!({"command": "rm -rf /secret-project"}),
                always: vec![],
            },
        }
    }

    fn titled() -> Event {
        Event::SessionUpdated {
            session: SessionInfo {
                id: "ses_1".into(),
                title: "Fix login".into(),
                created_ms: 0,
                updated_ms: 0,
                status: SessionStatus::Busy,
                parent: None,
            },
        }
    }

    #[test]
    fn a_waiting_permission_is_told_with_ids_only_never_its_command() {
        let a = attention_of("api", &asked(), None).unwrap();
        assert_eq!(a.kind, AttentionKind::PermissionWaiting);
        assert_eq!(a.request.as_deref(), Some("per_1"));
        assert_eq!(a.title, None);
        let json = serde_json::to_string(&Control::Attention { attention: a }).unwrap();
        assert!(!json.contains("secret-project"), "{json}");
    }

    #[test]
    fn only_a_relay_trusted_host_tells_the_title() {
        let mut titles = HashMap::new();
        assert_eq!(attention_of("api", &titled(), Some(&mut titles)), None);
        let a = attention_of("api", &asked(), Some(&mut titles)).unwrap();
        assert_eq!(a.title.as_deref(), Some("Fix login"));
        // Zero-trust: no title map, no title.
        assert_eq!(attention_of("api", &asked(), None).unwrap().title, None);
    }

    #[test]
    fn turns_and_crashes_are_told_and_noise_is_not() {
        let idle = Event::SessionIdle {
            session: "ses_1".into(),
        };
        assert_eq!(
            attention_of("api", &idle, None).unwrap().kind,
            AttentionKind::TurnFinished
        );
        let failed = Event::SessionError {
            session: "ses_1".into(),
            name: "E".into(),
            message: "secret text".into(),
        };
        let a = attention_of("api", &failed, None).unwrap();
        assert_eq!(a.kind, AttentionKind::TurnFailed);
        assert!(!serde_json::to_string(&a).unwrap().contains("secret text"));
        assert_eq!(
            attention_of("api", &Event::FileEdited { file: "a".into() }, None),
            None
        );
    }
}
