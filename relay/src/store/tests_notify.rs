//! Notification channels in the store, on both backends: per user, replaced by name, bounded
//! in number, delivery status recorded, secrets kept but never in a listing.

use super::test_db::on_both_backends;
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

on_both_backends! {
    fn channels_are_kept_per_user_replaced_by_name_and_bounded(s) {
        for u in ["alice", "bob"] {
            s.add_user(&UserId::from(u), 1).unwrap();
        }
        assert!(s.notify_put("alice", &spec("hook", Some("k1")), 2, 1).unwrap());
        assert!(!s.notify_put("alice", &spec("hook", Some("k2")), 2, 2).unwrap());
        assert!(s.notify_put("alice", &spec("two", None), 2, 3).unwrap());
        let refused = s.notify_put("alice", &spec("three", None), 2, 4).unwrap_err();
        assert!(refused.to_string().contains("notify remove"), "{refused}");
        assert!(s.notify_put("bob", &spec("hook", None), 2, 5).unwrap());
        let alice = s.notify_channels(Some("alice")).unwrap();
        assert_eq!(alice.len(), 2);
        assert_eq!(alice[0].spec.secret.as_deref(), Some("k2"));
        let info = alice[0].info();
        assert!(info.has_secret);
        assert!(!format!("{info:?}").contains("k2"), "a listing never carries the secret");
        assert_eq!(s.notify_channels(None).unwrap().len(), 3);
        assert!(s.notify_remove("alice", "two").unwrap());
        assert!(!s.notify_remove("alice", "two").unwrap());
    }

    fn deliveries_and_failures_are_recorded(s) {
        s.add_user(&UserId::from("alice"), 1).unwrap();
        s.notify_put("alice", &spec("hook", Some("k")), 4, 1).unwrap();
        s.notify_record("alice", "hook", Some("the receiver answered HTTP 500"), 10).unwrap();
        s.notify_record("alice", "hook", Some("connection refused"), 20).unwrap();
        let row = &s.notify_channels(Some("alice")).unwrap()[0];
        assert_eq!((row.failures, row.last_error_ms, row.delivered), (2, Some(20), 0));
        assert_eq!(row.last_error.as_deref(), Some("connection refused"));
        s.notify_record("alice", "hook", None, 30).unwrap();
        let row = &s.notify_channels(Some("alice")).unwrap()[0];
        assert_eq!((row.failures, row.last_ok_ms, row.delivered), (0, Some(30), 1));
        // A removed user's channels go with them.
        s.remove_user(&UserId::from("alice"), 40).unwrap();
        assert!(s.notify_channels(Some("alice")).unwrap().is_empty());
    }
}
