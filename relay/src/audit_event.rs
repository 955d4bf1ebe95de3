//! Typed audit events: everything the relay records in its audit trail, as one enum.
//! [`Audit::row`] is the one place that turns an event into the stored row (its actor, op,
//! decision and reason strings), so the rows keep the exact text earlier versions wrote and a
//! new event cannot invent a spelling of `deny`.

use crate::store::AuditEvent;
use proto::header::Op;
use proto::ids::{CredId, HostId, UserId};
use proto::rbac::Role;
use proto::template::TemplateRef;
use std::net::IpAddr;
use std::time::Duration;

/// What happened to a stream header at the one authorization point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed; the note says more (a take-over, a prompt's hash).
    Allowed {
        /// What the row's reason says, if anything.
        note: Option<String>,
    },
    /// Refused, with the precise reason.
    Denied {
        /// Why.
        reason: String,
    },
}

/// What happened to a queued prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueEvent {
    /// Stored for its offline host.
    Queued,
    /// Cancelled by its author.
    Cancelled,
    /// Its host did not come back in time.
    Expired,
    /// Refused when its host came back (the reason says why).
    DeliveryRefused {
        /// Why (without the "not delivered" prefix).
        reason: String,
    },
    /// Handed to its host's agent with the author's current role.
    Delivered {
        /// The role it was delivered with.
        role: Role,
    },
}

/// One event for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audit {
    /// An administrative change (CLI or the relay's administration operations), with a
    /// summary of what it did.
    Change {
        /// Who made it (a user, or the CLI's actor name).
        actor: String,
        /// The change's name (`host_add`, `grant`, `kill`…).
        op: &'static str,
        /// What it did.
        summary: String,
        /// The host it was about, where one.
        host: Option<String>,
    },
    /// An administration request answered by the relay: a read, or a refused change (changes
    /// that went through are recorded as [`Audit::Change`]).
    AdminRequest {
        /// Who asked.
        actor: UserId,
        /// Their role for it.
        role: Option<Role>,
        /// The operation's own name (`host_list`, not the `host_rotate` it travels as).
        op: &'static str,
        /// What it was about.
        target: Option<String>,
        /// Why it was refused; `None` for a read answered.
        refusal: Option<String>,
    },
    /// A stream header decided at the one authorization point.
    Stream {
        /// Who opened it.
        actor: UserId,
        /// Their effective role.
        role: Option<Role>,
        /// The operation.
        op: Op,
        /// The host named.
        host: Option<HostId>,
        /// The session (or else the workspace) named.
        target: Option<String>,
        /// Allowed or refused.
        verdict: Verdict,
    },
    /// A stream header naming a host, workspace or session that is not a plain name.
    MalformedName {
        /// Who opened it.
        actor: UserId,
        /// The operation.
        op: Op,
        /// Which field (`host`, `workspace`, `session`).
        field: &'static str,
    },
    /// A forwarded stream the host's agent refused by its own rules.
    AgentRefused {
        /// Who opened it.
        actor: UserId,
        /// Their role.
        role: Role,
        /// The operation.
        op: Op,
        /// The host.
        host: HostId,
        /// The session (or else the workspace) named.
        target: Option<String>,
        /// The agent's message.
        message: String,
    },
    /// A login attempt.
    Login {
        /// The user name as given, made printable.
        user: String,
        /// Where from.
        ip: IpAddr,
        /// `invite` or `password`.
        method: &'static str,
        /// The credential issued, or why the login failed.
        result: Result<CredId, String>,
    },
    /// A handshake refused (before or at authentication).
    HandshakeRefused {
        /// The credential id presented (printable), or `-`.
        who: String,
        /// Where from.
        ip: IpAddr,
        /// Why.
        reason: String,
    },
    /// Handshake refusals counted but not written one by one.
    HandshakeRefusals {
        /// The address, or `None` for many addresses together.
        from: Option<IpAddr>,
        /// The count and reasons.
        reason: String,
    },
    /// Something that happened to a queued prompt.
    Queue {
        /// Its author.
        user: String,
        /// Its host.
        host: String,
        /// Its entry id.
        id: String,
        /// What happened.
        event: QueueEvent,
    },
    /// A template published by an admin: a new version, or (`new: false`) a republish of the
    /// latest version's content, which keeps that version.
    TemplatePublished {
        /// Who published it.
        actor: UserId,
        /// Their role for it.
        role: Option<Role>,
        /// The version it names (with its hash).
        template: TemplateRef,
        /// Whether a new version was stored.
        new: bool,
    },
    /// A live connection closed because its credential stopped being valid.
    Disconnect {
        /// The host, for an agent's connection.
        agent_host: Option<String>,
        /// The user or host the credential belongs to.
        owner: String,
        /// The credential.
        cred: CredId,
        /// Why.
        why: String,
    },
    /// A `port_forward` stream ended (its start is the stream's own allowed row).
    ForwardClosed {
        /// Who forwarded.
        actor: UserId,
        /// The host.
        host: HostId,
        /// The host port.
        port: u16,
        /// Bytes from the operator to the port.
        up: u64,
        /// Bytes from the port to the operator.
        down: u64,
        /// How long the connection lasted.
        duration_ms: u64,
    },
}

const ALLOW: &str = "allow";
const DENY: &str = "deny";

fn decided(allowed: bool) -> String {
    if allowed { ALLOW } else { DENY }.to_owned()
}

impl Audit {
    /// The stored row for this event: the one place its strings are spelled.
    #[must_use]
    pub fn row(self) -> AuditEvent {
        match self {
            Self::Change {
                actor,
                op,
                summary,
                host,
            } => AuditEvent {
                actor,
                host,
                op: op.into(),
                target: Some(summary),
                decision: decided(true),
                ..AuditEvent::default()
            },
            Self::AdminRequest {
                actor,
                role,
                op,
                target,
                refusal,
            } => AuditEvent {
                actor: actor.0,
                role: role.map(|r| r.as_str().to_owned()),
                op: op.to_owned(),
                target,
                decision: decided(refusal.is_none()),
                reason: refusal,
                ..AuditEvent::default()
            },
            Self::Stream {
                actor,
                role,
                op,
                host,
                target,
                verdict,
            } => {
                let (allowed, reason) = match verdict {
                    Verdict::Allowed { note } => (true, note),
                    Verdict::Denied { reason } => (false, Some(reason)),
                };
                AuditEvent {
                    actor: actor.0,
                    role: role.map(|r| r.as_str().to_owned()),
                    host: host.map(|h| h.0),
                    op: op.as_str().to_owned(),
                    target,
                    decision: decided(allowed),
                    reason,
                }
            }
            Self::MalformedName { actor, op, field } => AuditEvent {
                actor: actor.0,
                op: op.as_str().to_owned(),
                decision: decided(false),
                reason: Some(format!("malformed {field} name in the stream header")),
                ..AuditEvent::default()
            },
            Self::AgentRefused {
                actor,
                role,
                op,
                host,
                target,
                message,
            } => AuditEvent {
                actor: actor.0,
                role: Some(role.as_str().to_owned()),
                host: Some(host.0),
                op: op.as_str().to_owned(),
                target,
                decision: decided(false),
                reason: Some(format!("refused by the agent: {message}")),
            },
            Self::Login {
                user,
                ip,
                method,
                result,
            } => {
                let event = AuditEvent {
                    actor: format!("{user}@{ip}"),
                    op: "login".into(),
                    target: Some(method.into()),
                    ..AuditEvent::default()
                };
                match result {
                    Ok(cred) => AuditEvent {
                        decision: decided(true),
                        reason: Some(format!("credential {cred} issued")),
                        ..event
                    },
                    // A stranger's text: cut to the row bounds.
                    Err(reason) => AuditEvent {
                        decision: decided(false),
                        reason: Some(reason),
                        ..event
                    }
                    .capped(),
                }
            }
            Self::HandshakeRefused { who, ip, reason } => AuditEvent {
                actor: format!("{who}@{ip}"),
                op: "handshake".into(),
                decision: decided(false),
                reason: Some(reason),
                ..AuditEvent::default()
            }
            .capped(),
            Self::HandshakeRefusals { from, reason } => AuditEvent {
                actor: match from {
                    Some(ip) => format!("-@{ip}"),
                    None => "-@many-addresses".to_owned(),
                },
                op: "handshake".into(),
                decision: decided(false),
                reason: Some(reason),
                ..AuditEvent::default()
            },
            Self::Queue {
                user,
                host,
                id,
                event,
            } => {
                let (op, allowed, role, reason) = match event {
                    QueueEvent::Queued => ("queued", true, None, Some("host offline".into())),
                    QueueEvent::Cancelled => ("queue_cancelled", true, None, None),
                    QueueEvent::Expired => (
                        "queue_expired",
                        false,
                        None,
                        Some("the host did not come back in time".into()),
                    ),
                    QueueEvent::DeliveryRefused { reason } => (
                        "queue_deliver",
                        false,
                        None,
                        Some(format!("not delivered: {reason}")),
                    ),
                    QueueEvent::Delivered { role } => {
                        ("queue_deliver", true, Some(role.as_str().to_owned()), None)
                    }
                };
                AuditEvent {
                    actor: user,
                    role,
                    host: Some(host),
                    op: op.to_owned(),
                    target: Some(id),
                    decision: decided(allowed),
                    reason,
                }
            }
            Self::TemplatePublished {
                actor,
                role,
                template,
                new,
            } => AuditEvent {
                actor: actor.0,
                role: role.map(|r| r.as_str().to_owned()),
                op: "template_publish".into(),
                target: Some(format!("template {} v{}", template.name, template.version)),
                decision: decided(true),
                reason: Some(if new {
                    template.hash
                } else {
                    format!(
                        "{}; same content as the latest version, kept",
                        template.hash
                    )
                }),
                ..AuditEvent::default()
            },
            Self::Disconnect {
                agent_host,
                owner,
                cred,
                why,
            } => AuditEvent {
                actor: "relay".into(),
                host: agent_host,
                op: "disconnect".into(),
                target: Some(format!("{owner} {cred}")),
                decision: decided(false),
                reason: Some(why),
                ..AuditEvent::default()
            },
            Self::ForwardClosed {
                actor,
                host,
                port,
                up,
                down,
                duration_ms,
            } => AuditEvent {
                actor: actor.0,
                host: Some(host.0),
                op: "forward_closed".into(),
                target: Some(format!("port {port}")),
                decision: decided(true),
                reason: Some(format!(
                    "{up} bytes up, {down} bytes down, {:.1} s",
                    Duration::from_millis(duration_ms).as_secs_f64()
                )),
                ..AuditEvent::default()
            },
        }
    }
}

impl From<Audit> for AuditEvent {
    fn from(event: Audit) -> Self {
        event.row()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_the_strings_earlier_versions_wrote() {
        let ip: IpAddr = [192, 0, 2, 7].into();
        let login = Audit::Login {
            user: "ada".into(),
            ip,
            method: "password",
            result: Ok(CredId::from("c1")),
        }
        .row();
        assert_eq!(
            login,
            AuditEvent {
                actor: "ada@192.0.2.7".into(),
                op: "login".into(),
                target: Some("password".into()),
                decision: "allow".into(),
                reason: Some("credential c1 issued".into()),
                ..AuditEvent::default()
            }
        );
        let delivered = Audit::Queue {
            user: "ada".into(),
            host: "box".into(),
            id: "q_1".into(),
            event: QueueEvent::Delivered {
                role: Role::Operator,
            },
        }
        .row();
        assert_eq!(
            delivered,
            AuditEvent {
                actor: "ada".into(),
                role: Some("operator".into()),
                host: Some("box".into()),
                op: "queue_deliver".into(),
                target: Some("q_1".into()),
                decision: "allow".into(),
                reason: None,
            }
        );
        let many = Audit::HandshakeRefusals {
            from: None,
            reason: "3 more".into(),
        }
        .row();
        assert_eq!(many.actor, "-@many-addresses");
        assert_eq!(many.decision, "deny");
        let refused = Audit::AdminRequest {
            actor: UserId::from("ada"),
            role: Some(Role::Admin),
            op: "host_list",
            target: None,
            refusal: Some("no".into()),
        }
        .row();
        assert_eq!(
            (refused.decision.as_str(), refused.reason.as_deref()),
            ("deny", Some("no"))
        );
    }

    #[test]
    fn a_strangers_login_reason_is_cut_to_the_row_bounds() {
        let row = Audit::Login {
            user: "x".into(),
            ip: [192, 0, 2, 7].into(),
            method: "invite",
            result: Err("y".repeat(10_000)),
        }
        .row();
        assert!(row.reason.is_some_and(|r| r.len() < 1_000));
    }

    #[test]
    fn a_closed_forward_is_one_row_with_its_bytes_and_duration() {
        let row = Audit::ForwardClosed {
            actor: UserId::from("ada"),
            host: HostId::from("box"),
            port: 8000,
            up: 120,
            down: 3_145_728,
            duration_ms: 2_500,
        }
        .row();
        assert_eq!(
            (
                row.op.as_str(),
                row.target.as_deref(),
                row.reason.as_deref()
            ),
            (
                "forward_closed",
                Some("port 8000"),
                Some("120 bytes up, 3145728 bytes down, 2.5 s")
            )
        );
        assert_eq!(row.host.as_deref(), Some("box"));
    }
}
