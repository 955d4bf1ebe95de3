//! `e2e_open` names the record format both ways: a host sealing differently is refused at the
//! channel open, one from before the field is not.

use super::*;

#[tokio::test]
async fn a_host_sealing_another_record_format_is_refused_at_the_channel_open_saying_what_to_update()
{
    for (records, update) in [
        (e2e::RECORD_FORMAT + 1, "update this cm-tui"),
        (e2e::RECORD_FORMAT - 1, "update host box's cm-agent"),
    ] {
        let pair = HostKeyPair::generate().unwrap();
        let rig = rig_sealing_in(
            TrustBundle::default(),
            HostKeyPair::from_secret(pair.secret()),
            Some(records),
        )
        .await;
        let mut trust = alice();
        trust.certs.push(host_cert(&pair));
        let streams = HostStreams::new(rig.conn.clone(), Some(trust), None);

        let e = rename(&streams, 1).await.unwrap_err().to_string();

        assert!(
            e.contains(&format!(
                "host box's cm-agent seals end-to-end records in format {records}"
            )) && e.ends_with(update),
            "{e}"
        );
        assert_eq!(
            rig.agent.seen_ops(Op::SessionRename),
            0,
            "nothing was sent on a channel that cannot be read"
        );
    }
}

#[tokio::test]
async fn a_host_from_before_the_record_format_field_still_gets_a_channel() {
    let pair = HostKeyPair::generate().unwrap();
    let rig = rig_sealing_in(
        TrustBundle::default(),
        HostKeyPair::from_secret(pair.secret()),
        None,
    )
    .await;
    let mut trust = alice();
    trust.certs.push(host_cert(&pair));
    let streams = HostStreams::new(rig.conn.clone(), Some(trust), None);

    let reply = rename(&streams, 1).await.unwrap();

    assert_eq!(reply["echo"]["title"], SECRET);
}
