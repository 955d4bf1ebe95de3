//! Full-screen app runtime (being written).

use crate::profile::Profile;
use proto::handshake::Key;

/// Runs the full-screen app.
///
/// # Errors
/// Terminal or connection failures.
pub async fn run(_profile: Profile, _key: Key) -> anyhow::Result<()> {
    anyhow::bail!("the full-screen view is not built yet; use `cm-tui hosts`")
}
