//! Administration through any relay of the fleet: the owner enrolls a host through relay b,
//! whose state directory holds only the shared certificate (the database is PostgreSQL).

use crate::world::{Fleet, Spec};
use anyhow::Result;
use proto::token::EnrollmentToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_enrolled_through_another_relay_of_the_fleet_gets_its_token() -> Result<()> {
    let Some(fleet) = Fleet::start(&Spec { agents: &[] }).await? else {
        return Ok(());
    };
    let op = fleet.owner_on(1)?;
    let out = op.tui_ok(&[
        "admin",
        "host",
        "add",
        "late-box",
        "--relay-trusted",
        "--json",
    ])?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    let token = EnrollmentToken::decode(v["token"].as_str().unwrap_or_default())?;
    assert_eq!(token.pin, fleet.pin);
    Ok(())
}
