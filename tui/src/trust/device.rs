//! This laptop's device key in the secret store, next to the credential (service
//! [`DEVICE_SERVICE`], account `user@relay`): the OS keyring, or the same reported 0600 file.

use super::TrustFileError;
use cm_client::secrets::SecretStore;
use proto::trust::DeviceKey;

/// Keyring service for device keys.
pub const DEVICE_SERVICE: &str = "codemantle-device";

/// The device key stored for `account`, if any.
///
/// # Errors
/// Store failures, or a stored value that is not a key (says how to start over).
pub fn stored(secrets: &SecretStore, account: &str) -> Result<Option<DeviceKey>, TrustFileError> {
    let Some(hex) = secrets.get(DEVICE_SERVICE, account)? else {
        return Ok(None);
    };
    let mut seed = [0u8; 32];
    hex::decode_to_slice(hex.trim(), &mut seed).map_err(|_| TrustFileError::DamagedKey {
        account: account.to_owned(),
        location: secrets.describe(),
    })?;
    Ok(Some(DeviceKey::from_seed(seed)?))
}

/// Draws a new device key for `account` and stores it (replacing any previous one).
///
/// # Errors
/// No OS randomness, or store failures.
pub fn create(secrets: &SecretStore, account: &str) -> Result<DeviceKey, TrustFileError> {
    let seed = cm_client::time::random32().map_err(|e| TrustFileError::Random(e.to_string()))?;
    let key = DeviceKey::from_seed(seed)?;
    secrets.set(DEVICE_SERVICE, account, &hex::encode(key.seed()))?;
    Ok(key)
}

/// Stores `key` as the device key of `account` (replacing any previous one).
///
/// # Errors
/// Store failures.
pub fn store(secrets: &SecretStore, account: &str, key: &DeviceKey) -> Result<(), TrustFileError> {
    secrets.set(DEVICE_SERVICE, account, &hex::encode(key.seed()))?;
    Ok(())
}

/// The device key for `account`, created when there is none; `true` when it was created.
///
/// # Errors
/// As [`stored`] and [`create`].
pub fn ensure(secrets: &SecretStore, account: &str) -> Result<(DeviceKey, bool), TrustFileError> {
    match stored(secrets, account)? {
        Some(k) => Ok((k, false)),
        None => create(secrets, account).map(|k| (k, true)),
    }
}
