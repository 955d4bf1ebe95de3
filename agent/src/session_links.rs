//! Sub-agent sessions (OpenCode's `task` tool) are driven by whoever owns their parent: the
//! agent tells the relay every child → parent link it sees in the workspaces' events, and the
//! relay records the parent's owner as the child's. Best effort per connection: the events
//! still in each workspace's replay buffer, then live ones; each link is sent once.

use crate::workspaces::Workspaces;
use proto::event::Event;
use proto::message::Control;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Links remembered per connection as already sent; beyond, the set starts over.
const MAX_SENT: usize = 65_536;

/// The child → parent link an event announces, if any.
pub fn link_of(event: &Event) -> Option<Control> {
    match event {
        Event::SessionUpdated { session } => {
            session.parent.as_ref().map(|p| Control::SessionParent {
                session: session.id.clone(),
                parent: p.clone(),
            })
        }
        _ => None,
    }
}

/// Sends the links of every workspace (also those added later) into `tx` until the receiver
/// is gone.
pub async fn forward(workspaces: Arc<Workspaces>, tx: mpsc::Sender<Control>) {
    let (merged_tx, mut merged) = mpsc::channel::<Control>(256);
    let mut changes = workspaces.changes();
    // Held, so a removed workspace's hub is never mistaken for a new one at the same address.
    let mut subscribed: Vec<Arc<crate::hub::EventHub>> = Vec::new();
    let mut sent = HashSet::new();
    loop {
        changes.borrow_and_update();
        for ws in workspaces.iter() {
            if subscribed.iter().any(|h| Arc::ptr_eq(h, &ws.hub)) {
                continue;
            }
            subscribed.push(Arc::clone(&ws.hub));
            // From the oldest event still buffered: links made while the relay was away.
            let mut sub = ws.hub.subscribe(Some(0));
            let merged_tx = merged_tx.clone();
            let closed = tx.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = closed.closed() => return,
                        frame = sub.next() => match frame {
                            Some(f) => {
                                if let Some(link) = link_of(&f.event)
                                    && merged_tx.send(link).await.is_err()
                                {
                                    return;
                                }
                            }
                            None => return,
                        },
                    }
                }
            });
        }
        let link = tokio::select! {
            () = tx.closed() => return,
            Ok(()) = changes.changed() => continue,
            link = merged.recv() => link,
        };
        let Some(link) = link else { return };
        let Control::SessionParent { session, .. } = &link else {
            continue;
        };
        if sent.len() >= MAX_SENT {
            sent.clear();
        }
        if sent.insert(session.clone()) && tx.send(link).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ops::{SessionInfo, SessionStatus};

    fn updated(id: &str, parent: Option<&str>) -> Event {
        Event::SessionUpdated {
            session: SessionInfo {
                id: id.into(),
                title: String::new(),
                created_ms: 0,
                updated_ms: 0,
                status: SessionStatus::Idle,
                parent: parent.map(str::to_owned),
            },
        }
    }

    #[test]
    fn only_child_sessions_announce_a_link() {
        assert_eq!(
            link_of(&updated("ses_child", Some("ses_parent"))),
            Some(Control::SessionParent {
                session: "ses_child".into(),
                parent: "ses_parent".into()
            })
        );
        assert_eq!(link_of(&updated("ses_top", None)), None);
        assert_eq!(
            link_of(&Event::SessionIdle {
                session: "ses_child".into()
            }),
            None
        );
    }
}
