//! The administration screen's certificates tab through `update()`: read with `trust_fetch`
//! when the tab is shown, rows per certified key, pending device keys, a refusal on the tab.

use super::admin::at_admin;
use super::*;
use crate::app::admin::{AdminTab, AdminView};
use crate::app::workspace_detail::Loadable;
use crate::call::{AdminCall, Call, CallError};
use proto::rbac::Role;
use proto::trust::{Cert, CertBody, DeviceKey, PendingDevice, Subject, TrustBundle, X25519Public};
use proto::wire_error::ErrorCode;

fn key(seed: u8) -> DeviceKey {
    DeviceKey::from_seed([seed; 32]).expect("a key")
}

/// All signed by alice's owner root: alice herself, bob on `box` (laptop and phone), carol's
/// admin grant (expired a minute ago), the host `box`'s key; and dave's key waiting.
pub(crate) fn bundle() -> TrustBundle {
    let root = key(1);
    let cert = |serial: &str, not_after_ms, subject| {
        let body = CertBody {
            serial: serial.into(),
            subject,
            not_before_ms: T0 - 86_400_000,
            not_after_ms,
        };
        Cert::sign(&body, &root)
    };
    let user = |name: &str, keys: Vec<DeviceKey>, host: &str, role| Subject::User {
        user: UserId::from(name),
        device_keys: keys.iter().map(DeviceKey::public).collect(),
        host: host.into(),
        role,
    };
    let year = 365 * 86_400_000;
    TrustBundle {
        certs: vec![
            cert(
                "a1",
                T0 + year,
                user("alice", vec![key(1)], "*", Role::Owner),
            ),
            cert(
                "b1",
                T0 + 90 * 86_400_000,
                user("bob", vec![key(2), key(3)], "box", Role::Operator),
            ),
            cert(
                "c1",
                T0 - 60_000,
                user("carol", vec![key(5)], "*", Role::Admin),
            ),
            cert(
                "h1",
                T0 + year,
                Subject::Host {
                    host: HostId::from("box"),
                    host_key: X25519Public([9; 32]),
                },
            ),
        ],
        pending: vec![PendingDevice {
            user: UserId::from("dave"),
            key: key(4).public(),
            seen_ms: T0 - 300_000,
            label: Some("dave-laptop".into()),
        }],
        ..TrustBundle::default()
    }
}

/// On the certificates tab (reached backwards from the users tab), its bundle read.
pub(crate) fn at_certs(role: Role) -> Drive {
    let mut d = at_admin(role);
    d.key('h');
    assert_eq!(d.app.admin().map(|a| a.tab), Some(AdminTab::Certs));
    let request = d.take(Op::TrustFetch);
    assert_eq!(request.call, Call::Admin(AdminCall::TrustFetch));
    d.net(NetEvent::Reply {
        request,
        // carol's grant has expired: not vouched for.
        result: Ok(Response::Trust {
            bundle: bundle(),
            vouched: Some(vec![true, true, false, true]),
        }),
    });
    d
}

#[test]
fn the_certificates_tab_lists_each_certified_key_and_the_keys_waiting() {
    let mut d = at_certs(Role::Admin);
    let view = d.app.admin().expect("open");
    let certs = match &view.certs {
        Loadable::Ready(c) => c.clone(),
        other => panic!("{other:?}"),
    };
    let holders: Vec<&str> = certs.certs.iter().map(|r| r.holder.as_str()).collect();
    assert_eq!(holders, ["alice", "bob", "bob", "carol", "box"]);
    assert_eq!(certs.pending[0].user, "dave");
    assert_eq!(view.rows(), 5);
    d.key('G');
    assert_eq!(d.app.admin().map(AdminView::selected), Some(4));
    // Nothing here changes anything: certifying signs on the laptop, in the CLI.
    for k in ['a', 'D', '+', 'x'] {
        d.key(k);
        assert!(d.pending.is_empty(), "{k}: {:?}", d.pending);
    }
    d.key('r');
    assert_eq!(take_trust(&mut d), AdminCall::TrustFetch);
}

fn take_trust(d: &mut Drive) -> AdminCall {
    match d.take(Op::TrustFetch).call {
        Call::Admin(a) => a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refused_trust_fetch_is_shown_on_the_tab() {
    let mut d = at_admin(Role::Admin);
    d.key('h');
    let request = d.take(Op::TrustFetch);
    d.net(NetEvent::Reply {
        request,
        result: Err(CallError::refused(
            ErrorCode::UnknownOp,
            "unknown op trust_fetch",
        )),
    });
    match &d.app.admin().expect("open").certs {
        Loadable::Failed(e) => assert!(e.contains("trust_fetch"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.app.screen(), Screen::Admin);
}
