//! The one authorization point: every stream header an operator opens is decided here, once,
//! before anything is answered or forwarded. Handlers never re-check.

use proto::header::StreamHeader;
use proto::ids::{HostId, UserId};
use proto::rbac::{self, Decision, Ownership, Role};

/// The effective role of a user with `grants` on `host`: the highest grant that matches the
/// host or `*` (design §6).
pub fn effective_role(grants: &[(String, Role)], host: &HostId) -> Option<Role> {
    grants
        .iter()
        .filter(|(h, _)| h == "*" || h == host.as_str())
        .map(|(_, r)| *r)
        .max()
}

/// The role that counts for an operation without a host target (e.g. listing hosts): the
/// highest of all grants.
pub fn highest_role(grants: &[(String, Role)]) -> Option<Role> {
    grants.iter().map(|(_, r)| *r).max()
}

/// The role of the user's grant on every host (`*`), if any.
pub fn global_role(grants: &[(String, Role)]) -> Option<Role> {
    grants
        .iter()
        .filter(|(h, _)| h == "*")
        .map(|(_, r)| *r)
        .max()
}

/// Relay-answered operations that need admin or more (administration of the relay itself).
pub fn is_relay_admin(op: proto::header::Op) -> bool {
    op.is_relay_local()
        && rbac::required_role(op, Ownership::None).is_some_and(|r| r >= Role::Admin)
}

/// Whether a user with `grants` may see `host` at all.
pub fn may_see(grants: &[(String, Role)], host: &HostId) -> bool {
    effective_role(grants, host).is_some()
}

/// Whether `actor` (with `actor_grants`) may act on the account or credentials of `target`
/// (holding `target_grants`): kill their credentials, revoke one, change their password,
/// remove them. As for grants, a user with admin or owner rights anywhere is managed only by
/// an owner of every host; anyone may act on themselves.
pub fn may_manage_user(
    actor: &UserId,
    actor_grants: &[(String, Role)],
    target: &UserId,
    target_grants: &[(String, Role)],
) -> bool {
    actor == target
        || highest_role(target_grants).is_none_or(|r| r < Role::Admin)
        || global_role(actor_grants) == Some(Role::Owner)
}

/// Decides one stream header for a principal with `grants`.
pub fn decide(
    grants: &[(String, Role)],
    header: &StreamHeader,
    ownership: Ownership,
) -> (Option<Role>, Decision) {
    let role = if is_relay_admin(header.op) {
        // Administering the relay (users, hosts, credentials, kill switch, audit) is global:
        // only a grant on every host (`*`) counts, so an admin of one host cannot manage
        // users or kill other hosts — whatever host the header names.
        global_role(grants)
    } else {
        match &header.host {
            Some(host) => effective_role(grants, host),
            None => highest_role(grants),
        }
    };
    (role, rbac::authorize(role, header.op, ownership))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::header::Op;
    use proto::ids::ReqId;
    use proto::rbac::DenyReason;

    fn grants() -> Vec<(String, Role)> {
        vec![("*".into(), Role::Viewer), ("box".into(), Role::Operator)]
    }

    #[test]
    fn per_host_grants_change_the_outcome() {
        let g = grants();
        let mut h = StreamHeader::new(Op::OpencodeStart, ReqId(1));
        h.host = Some(HostId::from("box"));
        assert_eq!(
            decide(&g, &h, Ownership::None),
            (Some(Role::Operator), Decision::Allow)
        );
        h.host = Some(HostId::from("other"));
        assert_eq!(
            decide(&g, &h, Ownership::None).1,
            Decision::Deny(DenyReason::RoleTooLow {
                needed: Role::Operator,
                have: Role::Viewer
            })
        );
        assert_eq!(
            decide(&[], &h, Ownership::None).1,
            Decision::Deny(DenyReason::NoGrant)
        );
        assert!(may_see(&g, &HostId::from("anything")));
        assert!(!may_see(&[("box".into(), Role::Owner)], &HostId::from("x")));
    }

    #[test]
    fn logout_needs_no_grant() {
        let h = StreamHeader::new(Op::Logout, ReqId(1));
        assert_eq!(decide(&[], &h, Ownership::None), (None, Decision::Allow));
    }

    #[test]
    fn naming_a_host_does_not_turn_a_host_grant_into_relay_administration() {
        let owner_of_box = vec![("box".to_owned(), Role::Owner)];
        for op in Op::ALL.into_iter().filter(|op| is_relay_admin(*op)) {
            let mut h = StreamHeader::new(op, ReqId(1));
            h.host = Some(HostId::from("box"));
            assert_eq!(
                decide(&owner_of_box, &h, Ownership::None),
                (None, Decision::Deny(DenyReason::NoGrant)),
                "{}",
                op.as_str()
            );
        }
        // Driving that host is still theirs.
        let mut h = StreamHeader::new(Op::Prompt, ReqId(1));
        h.host = Some(HostId::from("box"));
        assert_eq!(
            decide(&owner_of_box, &h, Ownership::Other).1,
            Decision::Allow
        );
    }

    #[test]
    fn relay_administration_needs_a_grant_on_every_host() {
        let admin_of_box = vec![("box".to_owned(), Role::Admin)];
        let h = StreamHeader::new(Op::UserManage, ReqId(1));
        assert_eq!(
            decide(&admin_of_box, &h, Ownership::None).1,
            Decision::Deny(DenyReason::NoGrant)
        );
        let mut g = admin_of_box.clone();
        g.push(("*".into(), Role::Operator));
        assert_eq!(
            decide(&g, &h, Ownership::None).1,
            Decision::Deny(DenyReason::RoleTooLow {
                needed: Role::Admin,
                have: Role::Operator
            })
        );
        g.push(("*".into(), Role::Admin));
        assert_eq!(decide(&g, &h, Ownership::None).1, Decision::Allow);
        // Operator-level relay operations still use the highest grant.
        let q = StreamHeader::new(Op::QueueList, ReqId(1));
        assert_eq!(
            decide(&[("box".into(), Role::Operator)], &q, Ownership::None).1,
            Decision::Allow
        );
    }

    #[test]
    fn only_an_owner_manages_users_with_admin_or_owner_rights() {
        let (ada, owner, otto) = (
            UserId::from("ada"),
            UserId::from("owner"),
            UserId::from("otto"),
        );
        let admin = vec![("*".to_owned(), Role::Admin)];
        let owns = vec![("*".to_owned(), Role::Owner)];
        let operates = vec![("*".to_owned(), Role::Operator)];
        let admin_of_box = vec![("box".to_owned(), Role::Admin)];
        assert!(!may_manage_user(&ada, &admin, &owner, &owns));
        assert!(!may_manage_user(&ada, &admin, &otto, &admin_of_box));
        assert!(may_manage_user(&ada, &admin, &otto, &operates));
        assert!(may_manage_user(&ada, &admin, &otto, &[]));
        assert!(may_manage_user(&ada, &admin, &ada, &admin));
        assert!(may_manage_user(&owner, &owns, &ada, &admin));
        assert!(!may_manage_user(&ada, &admin_of_box, &owner, &owns));
    }

    #[test]
    fn host_list_uses_the_highest_grant() {
        let h = StreamHeader::new(Op::HostList, ReqId(1));
        assert_eq!(decide(&grants(), &h, Ownership::None).1, Decision::Allow);
        assert_eq!(
            decide(&[], &h, Ownership::None).1,
            Decision::Deny(DenyReason::NoGrant)
        );
    }
}
