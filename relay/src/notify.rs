//! Notifications sent by the relay (issue #22), so they reach a user with no TUI open: the
//! agents say what needs a human (`Control::Attention`, metadata only), presence says which
//! host is offline too long, and each user's channels (ntfy topics, signed webhooks) get a
//! short text with the exact `cm-tui` command that answers it.
//!
//! [`policy`] and [`offline`] decide, without IO and with the time passed in; [`text`]
//! writes the words; [`targets`] says which addresses may be reached (`[notify]` of
//! `relay.toml`) and [`admission`] what a new channel must pass; [`sealing`] keeps channel
//! secrets sealed at rest; [`deliver`] and [`http`] are the thin shell that POSTs. The
//! relay's operations and the background task that drives all of it are `net::notify_ops`.

pub mod admission;
pub mod deliver;
pub mod http;
pub mod offline;
pub mod policy;
pub mod sealing;
pub mod targets;
pub mod text;

use parking_lot::Mutex;
use policy::{Notice, Outgoing, Policy, PolicyConfig, Recipient, Suppressed, What};
use proto::ids::{HostId, is_valid_name};
use proto::notify::{Attention, ChannelSpec};

/// A host offline this long is reported (to channels with the `offline` event).
pub const OFFLINE_AFTER_MS: u64 = 10 * 60_000;

/// The notification state of one relay: the policy and the offline watch, behind locks held
/// only for the sans-IO calls, and the operator's settings.
#[derive(Debug)]
pub struct Notifier {
    policy: Mutex<Policy>,
    offline: Mutex<offline::OfflineWatch>,
    /// Where notifications may be sent.
    pub targets: targets::TargetPolicy,
    /// Seals and opens channel secrets.
    pub sealer: std::sync::Arc<sealing::Sealer>,
    /// Woken when something was offered (the task looks at what is due).
    pub wake: tokio::sync::Notify,
    /// Attention notices handled at once (off the agents' control loops); beyond, dropped.
    pub attention_slots: std::sync::Arc<tokio::sync::Semaphore>,
}

/// How many attention notices are handled at once.
pub const ATTENTION_SLOTS: usize = 64;

impl Notifier {
    /// A notifier with `config`, reporting hosts offline for `offline_after_ms`, sending to
    /// what `targets` allows, sealing secrets with `sealer`.
    pub fn new(
        config: PolicyConfig,
        offline_after_ms: u64,
        targets: targets::TargetPolicy,
        sealer: sealing::Sealer,
    ) -> Self {
        Self {
            policy: Mutex::new(Policy::new(config)),
            offline: Mutex::new(offline::OfflineWatch::new(offline_after_ms)),
            targets,
            sealer: std::sync::Arc::new(sealer),
            wake: tokio::sync::Notify::new(),
            attention_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(ATTENTION_SLOTS)),
        }
    }

    /// See [`Policy::focus`].
    pub fn focus(&self, user: &str, host: &str, workspace: &str, session: &str, now_ms: u64) {
        self.policy
            .lock()
            .focus(user, host, workspace, session, now_ms);
    }

    /// See [`Policy::offer`]; wakes the task when taken.
    ///
    /// # Errors
    /// Why it is not sent.
    pub fn offer(
        &self,
        to: Recipient,
        spec: &ChannelSpec,
        notice: Notice,
        now_ms: u64,
    ) -> Result<(), Suppressed> {
        let taken = self.policy.lock().offer(to, spec, notice, now_ms);
        if taken.is_ok() {
            self.wake.notify_one();
        }
        taken
    }

    /// See [`offline::OfflineWatch::observe`].
    pub fn observe_host(&self, host: &str, online: bool, now_ms: u64) {
        self.offline.lock().observe(host, online, now_ms);
    }

    /// See [`offline::OfflineWatch::retain`].
    pub fn forget_other_hosts(&self, known: &[&str]) {
        self.offline.lock().retain(known);
    }

    /// Hosts offline too long, newly.
    pub fn offline_due(&self, now_ms: u64) -> Vec<(String, u64)> {
        self.offline.lock().due(now_ms)
    }

    /// See [`Policy::due`].
    pub fn due(&self, now_ms: u64) -> Vec<Outgoing> {
        self.policy.lock().due(now_ms)
    }

    /// See [`Policy::next_due`].
    pub fn next_due(&self) -> Option<u64> {
        self.policy.lock().next_due()
    }

    /// See [`Policy::finished`].
    pub fn finished(&self, out: Outgoing, ok: bool, now_ms: u64, random: u64) -> policy::Finished {
        self.policy.lock().finished(out, ok, now_ms, random)
    }
}

/// Why an agent's attention notice is ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttentionRefused {
    /// A name is not an id (it would end up in a shell command a user pastes).
    #[error("a workspace, session or request name is not a valid id")]
    BadName,
}

/// The notice an agent's `attention` from `host` stands for. Every name must be a valid id:
/// they go into the `cm-tui` command a user copies into a shell, so an agent (a zero-trust
/// host's included) cannot smuggle shell syntax into it.
///
/// # Errors
/// [`AttentionRefused::BadName`].
pub fn accept_attention(host: &HostId, attention: Attention) -> Result<Notice, AttentionRefused> {
    let ok = |s: &Option<String>| s.as_deref().is_none_or(is_valid_name);
    if !is_valid_name(host.as_str())
        || !is_valid_name(&attention.workspace)
        || !ok(&attention.session)
        || !ok(&attention.request)
    {
        return Err(AttentionRefused::BadName);
    }
    Ok(Notice {
        host: host.as_str().to_owned(),
        workspace: attention.workspace,
        session: attention.session,
        title: attention
            .title
            .map(|t| proto::text::sanitize_capped(&t, text::MAX_TITLE_CHARS)),
        what: What::Attention(attention.kind),
        request: attention.request,
    })
}

/// The notice for a host offline `minutes`.
pub fn host_offline(host: &str, minutes: u64) -> Notice {
    Notice {
        host: host.to_owned(),
        workspace: String::new(),
        session: None,
        title: None,
        what: What::HostOffline { minutes },
        request: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::notify::AttentionKind;

    #[test]
    fn an_agent_cannot_put_shell_syntax_into_a_notification_command() {
        let host = HostId::from("box");
        let base = Attention {
            workspace: "api".into(),
            session: Some("ses_1".into()),
            title: Some("t".into()),
            kind: AttentionKind::PermissionWaiting,
            request: Some("per_1".into()),
        };
        assert!(accept_attention(&host, base.clone()).is_ok());
        for evil in ["per_1; rm -rf ~", "$(curl x)", "a`b`", "per 1", ""] {
            let mut a = base.clone();
            a.request = Some(evil.into());
            assert_eq!(
                accept_attention(&host, a),
                Err(AttentionRefused::BadName),
                "{evil}"
            );
            let mut a = base.clone();
            a.workspace = evil.into();
            assert!(accept_attention(&host, a).is_err());
        }
    }
}
