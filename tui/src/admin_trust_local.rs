//! What the laptop's trust commands share (`admin trust …`, `admin_trust_rotate`, the
//! zero-trust steps of `admin host/user …`): this laptop's trust state with the rest of its
//! trust file, fetching and publishing trust objects, and publishing its own revocation list.

use crate::commands::CommandError;
use crate::profile::Profile;
use crate::relay_call::{RelayConn, call};
use crate::trust::admin::{self, Authority};
use crate::trust::file::{OwnList, TrustFile};
use crate::trust::{self, OperatorTrust, TrustFileError};
use cm_client::time::now_ms;
use proto::admin::AdminDone;
use proto::op;
use proto::trust::{PublicKey, TrustBundle, TrustQuery};
use serde::Serialize;

/// A trust file or secret store failure, as a command error.
pub fn trust_err(e: TrustFileError) -> CommandError {
    CommandError::BadInput(e.to_string())
}

fn no_key() -> CommandError {
    CommandError::BadInput(
        "this laptop has no device key for this login; log in again (`cm-tui login …`) to make one"
            .into(),
    )
}

/// This laptop's trust state and the rest of its trust file.
#[derive(Debug)]
pub struct Local {
    /// The trust state (roots, certificates, revocations, device key).
    pub trust: OperatorTrust,
    /// The rest of the trust file (bind secrets, this laptop's own list).
    pub file: TrustFile,
}

impl Local {
    /// This profile's.
    ///
    /// # Errors
    /// No device key (says to log in again), or an unreadable trust file or store.
    pub fn load(profile: &Profile) -> Result<Self, CommandError> {
        let trust = trust::load(profile)
            .map_err(trust_err)?
            .ok_or_else(no_key)?;
        let file = TrustFile::read(&trust::file_path(profile)).map_err(trust_err)?;
        Ok(Self { trust, file })
    }

    /// Writes the trust file (atomically, 0600).
    ///
    /// # Errors
    /// File failures.
    pub fn save(&mut self, profile: &Profile) -> Result<(), CommandError> {
        self.trust.store_into(&mut self.file);
        self.file
            .write(&trust::file_path(profile))
            .map_err(trust_err)
    }

    /// What this laptop's device key may sign now.
    pub fn authority(&self) -> Authority {
        admin::authority(&self.trust, now_ms())
    }

    /// The authority, refused when this laptop cannot sign.
    ///
    /// # Errors
    /// [`admin::CANNOT_SIGN`].
    pub fn require_signer(&self) -> Result<Authority, CommandError> {
        match self.authority() {
            Authority::None => Err(CommandError::BadInput(admin::CANNOT_SIGN.into())),
            a => Ok(a),
        }
    }
}

/// Everything the relay stores for zero-trust (`trust_fetch`).
///
/// # Errors
/// Refusals and transport failures.
pub async fn fetch(remote: &impl RelayConn) -> Result<TrustBundle, CommandError> {
    call::<op::TrustFetch>(remote, &TrustQuery::default()).await
}

/// Publishes `bundle` (`trust_publish`).
///
/// # Errors
/// Refusals and transport failures.
pub async fn publish(remote: &impl RelayConn, bundle: &TrustBundle) -> Result<(), CommandError> {
    let _: AdminDone = call::<op::TrustPublish>(remote, bundle).await?;
    Ok(())
}

/// Prints `v` as JSON with `json`, else `text`.
///
/// # Errors
/// Serialization failures.
pub fn out<T: Serialize>(json: bool, v: &T, text: String) -> Result<(), CommandError> {
    if json {
        println!("{}", proto::text::json_pretty(v)?);
    } else {
        print!("{text}");
    }
    Ok(())
}

/// Serializes this process's read-add-sign-save of the own revocation list: the app revokes
/// from concurrent calls (two users removed in quick succession) and re-signs the list hourly
/// (`revocation_keeper`), and each must build on the other's list, not overwrite it.
pub(crate) static OWN_LIST: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Adds `serials` and `keys` to this laptop's own revocation list, signs it again, saves the
/// trust file and publishes the list. The list is read from the trust file again just before
/// (another revocation may have been saved since `local` was loaded).
///
/// # Errors
/// Trust file, transport failures and refusals.
pub async fn publish_revocations(
    remote: &impl RelayConn,
    profile: &Profile,
    local: &mut Local,
    serials: &[String],
    keys: &[PublicKey],
    now: u64,
) -> Result<(), CommandError> {
    let list = {
        let _one_at_a_time = OWN_LIST
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let saved = TrustFile::read(&trust::file_path(profile)).map_err(trust_err)?;
        let own: &mut OwnList = &mut local.file.own_list;
        own.seq = own.seq.max(saved.own_list.seq);
        own.serials.extend(saved.own_list.serials);
        own.keys.extend(saved.own_list.keys);
        own.serials.extend(serials.iter().cloned());
        own.keys.extend(keys.iter().copied());
        let list = admin::sign_own_list(&local.trust, own, now);
        local
            .trust
            .revoked
            .serials
            .extend(own.serials.iter().cloned());
        local.trust.revoked.keys.extend(own.keys.iter().copied());
        local.save(profile)?;
        list
    };
    publish(
        remote,
        &TrustBundle {
            revocations: vec![list],
            ..TrustBundle::default()
        },
    )
    .await
}
