//! Notification channels in the store, on both backends: per user, replaced by name, bounded
//! in number, delivery status recorded, secrets sealed at rest and never in a listing, and a
//! row this relay cannot use listed as broken without hiding the others.

use super::test_db::on_both_backends;
use crate::notify::sealing::Sealer;
use proto::ids::UserId;
use proto::notify::{ChannelSpec, ChannelTarget};

fn spec(name: &str, secret: Option<&str>) -> ChannelSpec {
    ChannelSpec {
        name: name.into(),
        target: ChannelTarget::Webhook {
            url: "http://127.0.0.1:9/h".into(),
        },
        secret: secret.map(str::to_owned),
        events: vec![],
        quiet: None,
        ignore_presence: false,
    }
}

fn key() -> Sealer {
    Sealer::with_key([1; 32])
}

on_both_backends! {
    fn channels_are_kept_per_user_replaced_by_name_and_bounded(s) {
        let k = key();
        for u in ["alice", "bob"] {
            s.add_user(&UserId::from(u), 1).unwrap();
        }
        assert!(s.notify_put("alice", &spec("hook", Some("k1")), &k, 2, 1).unwrap());
        assert!(!s.notify_put("alice", &spec("hook", Some("k2")), &k, 2, 2).unwrap());
        assert!(s.notify_put("alice", &spec("two", None), &k, 2, 3).unwrap());
        let refused = s.notify_put("alice", &spec("three", None), &k, 2, 4).unwrap_err();
        assert!(refused.to_string().contains("notify remove"), "{refused}");
        assert!(s.notify_put("bob", &spec("hook", None), &k, 2, 5).unwrap());
        let alice = s.notify_channels(Some("alice"), &k).unwrap();
        assert_eq!(alice.len(), 2);
        assert_eq!(alice[0].spec.as_ref().unwrap().secret.as_deref(), Some("k2"));
        let info = alice[0].info();
        assert!(info.has_secret);
        assert!(!format!("{info:?}").contains("k2"), "a listing never carries the secret");
        assert_eq!(s.notify_channels(None, &k).unwrap().len(), 3);
        assert!(s.notify_remove("alice", "two").unwrap());
        assert!(!s.notify_remove("alice", "two").unwrap());
    }

    fn deliveries_and_failures_are_recorded(s) {
        let k = key();
        s.add_user(&UserId::from("alice"), 1).unwrap();
        s.notify_put("alice", &spec("hook", Some("k")), &k, 4, 1).unwrap();
        s.notify_record("alice", "hook", Some("the receiver answered HTTP 500"), 10).unwrap();
        s.notify_record("alice", "hook", Some("connection refused"), 20).unwrap();
        let row = &s.notify_channels(Some("alice"), &k).unwrap()[0];
        assert_eq!((row.failures, row.last_error_ms, row.delivered), (2, Some(20), 0));
        assert_eq!(row.last_error.as_deref(), Some("connection refused"));
        s.notify_record("alice", "hook", None, 30).unwrap();
        let row = &s.notify_channels(Some("alice"), &k).unwrap()[0];
        assert_eq!((row.failures, row.last_ok_ms, row.delivered), (0, Some(30), 1));
        // A removed user's channels go with them.
        s.remove_user(&UserId::from("alice"), 40).unwrap();
        assert!(s.notify_channels(Some("alice"), &k).unwrap().is_empty());
    }

    fn the_stored_column_holds_no_secret_and_a_wrong_key_breaks_only_its_row(s) {
        const SECRET: &str = "whsec_0123456789abcdef";
        let (ours, theirs) = (key(), Sealer::with_key([2; 32]));
        s.add_user(&UserId::from("alice"), 1).unwrap();
        s.notify_put("alice", &spec("a-hook", Some(SECRET)), &ours, 4, 1).unwrap();
        s.notify_put("alice", &spec("b-hook", Some("other")), &theirs, 4, 2).unwrap();
        s.notify_put("alice", &spec("c-plain", None), &theirs, 4, 3).unwrap();
        let column = s.text("SELECT spec FROM notify_channels WHERE name = 'a-hook'");
        assert!(!column.contains(SECRET), "{column}");
        assert!(!column.contains(&hex::encode(SECRET)), "{column}");
        assert!(column.contains("sealed_secret"), "{column}");
        // Read with our key: the row sealed under another key is broken, saying why; the
        // others are whole.
        let rows = s.notify_channels(Some("alice"), &ours).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].spec.as_ref().unwrap().secret.as_deref(), Some(SECRET));
        let why = rows[1].spec.as_ref().unwrap_err();
        assert!(why.contains("secret_key_file"), "{why}");
        assert_eq!(rows[1].info().target, ChannelTarget::Unknown);
        assert_eq!(rows[1].info().last_error.as_deref(), Some(why.as_str()));
        assert!(rows[2].spec.is_ok());
    }

    fn a_row_this_relay_cannot_read_is_listed_broken_and_hides_nothing(s) {
        let k = key();
        s.add_user(&UserId::from("alice"), 1).unwrap();
        s.add_user(&UserId::from("bob"), 1).unwrap();
        s.notify_put("alice", &spec("hook", Some("k")), &k, 4, 1).unwrap();
        s.notify_put("bob", &spec("hook", None), &k, 4, 1).unwrap();
        s.sql(
            "INSERT INTO notify_channels(user_name, name, spec, created_ms) VALUES \
             ('alice', 'garbled', '{not json', 1), \
             ('alice', 'mail', '{\"name\":\"mail\",\"target\":{\"kind\":\"smtp\",\"to\":\"a@b\"}}', 1)",
        )
        .unwrap();
        let rows = s.notify_channels(None, &k).unwrap();
        let names: Vec<(&str, &str, bool)> = rows
            .iter()
            .map(|r| (r.user.as_str(), r.name.as_str(), r.spec.is_ok()))
            .collect();
        assert_eq!(
            names,
            [
                ("alice", "garbled", false),
                ("alice", "hook", true),
                ("alice", "mail", false),
                ("bob", "hook", true),
            ]
        );
        let garbled = rows[0].info();
        assert!(garbled.failures >= 1);
        assert!(garbled.last_error.unwrap().contains("notify remove garbled"));
        assert!(rows[2].spec.as_ref().unwrap_err().contains("newer"));
        // It can be removed like any other.
        assert!(s.notify_remove("alice", "garbled").unwrap());
    }

    fn a_row_stored_before_secrets_were_sealed_reads_and_is_sealed_when_written(s) {
        let k = key();
        s.add_user(&UserId::from("alice"), 1).unwrap();
        s.sql(
            "INSERT INTO notify_channels(user_name, name, spec, created_ms) VALUES ('alice', 'hook', \
             '{\"name\":\"hook\",\"target\":{\"kind\":\"webhook\",\"url\":\"http://127.0.0.1:9/h\"},\"secret\":\"old-plain\"}', 1)",
        )
        .unwrap();
        let rows = s.notify_channels(Some("alice"), &k).unwrap();
        let old = rows[0].spec.clone().unwrap();
        assert_eq!(old.secret.as_deref(), Some("old-plain"));
        s.notify_put("alice", &old, &k, 4, 2).unwrap();
        let column = s.text("SELECT spec FROM notify_channels WHERE name = 'hook'");
        assert!(!column.contains("old-plain"), "{column}");
        let rows = s.notify_channels(Some("alice"), &k).unwrap();
        assert_eq!(rows[0].spec.as_ref().unwrap().secret.as_deref(), Some("old-plain"));
    }
}
