//! Whole-screen snapshots of the administration screen's certificates tab at 80×24 and 50×30:
//! users' and hosts' certified keys with their signer, an expired grant, a key waiting.

use super::{screen, steady};
use crate::app::tests::admin_certs::at_certs;
use proto::rbac::Role;
use proto::trust::DeviceKey;

fn fingerprint(seed: u8) -> String {
    DeviceKey::from_seed([seed; 32])
        .expect("a key")
        .public()
        .fingerprint()
}

#[test]
fn admin_certificates_tab_shows_holders_fingerprints_and_keys_waiting() {
    let d = steady(at_certs(Role::Owner));
    let root = fingerprint(1);
    for (w, h) in [(80, 24), (50, 30)] {
        let text = screen(&d.app, w, h);
        for needle in [
            "certificates",
            "alice",
            "carol",
            "expired",
            "x25519:",
            "dave",
            "cm-tui admin user certify NAME",
            fingerprint(2).as_str(),
            fingerprint(4).as_str(),
            format!("by {root}").as_str(),
        ] {
            assert!(
                text.contains(needle),
                "{needle:?} missing at {w}x{h}:\n{text}"
            );
        }
    }
    let wide = screen(&d.app, 80, 24);
    for needle in ["✓ alice", "✗ carol", "✓ box", "chains to your roots"] {
        assert!(wide.contains(needle), "{needle:?} missing:\n{wide}");
    }
    assert!(wide.contains("operator") && wide.contains("*"), "{wide}");
    insta::assert_snapshot!(format!("{wide}{}", screen(&d.app, 50, 30)));
}
