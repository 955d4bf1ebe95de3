//! The fleet scenario's table rows, and the host-list size check.

use super::{GOAL_HS, GOAL_RSS_KIB, Measured};
use crate::report::{Row, Verdict};
use crate::stats::grouped;
use crate::swarm;
use anyhow::Result;
use proto::frame::{MAX_FRAME_LEN, encoded_len};
use proto::host_watch::{HostUpdate, PAGE_BUDGET, pages};
use proto::ids::HostId;
use proto::message::{HostInfo, HostList, HostStatus};
use proto::rbac::Role;
use std::time::Duration;

/// Bytes one host adds to a host list with a status like a real agent's, and how many pages
/// (`proto::host_watch::pages`) a full list of `fleet` such hosts takes.
pub(super) fn realistic_list_pages(fleet: usize) -> Result<(usize, usize)> {
    let host = |i: usize| {
        let name = format!("build-box-{i:03}");
        HostInfo {
            host: HostId::from(name.as_str()),
            online: true,
            last_heartbeat_ms: Some(1_760_000_000_000),
            status: Some(HostStatus {
                hostname: name,
                os: "linux 6.1.0-28-amd64".into(),
                agent_version: "0.1.0".into(),
                uptime_s: 1_234_567,
                load: [0.52, 0.61, 0.70],
                mem_total_kib: 32_780_000,
                mem_available_kib: 20_120_000,
                workspaces: vec!["api".into(), "web".into()],
            }),
        }
    };
    let list = |n: usize| {
        let hosts: Vec<HostInfo> = (0..n).map(host).collect();
        let roles = hosts
            .iter()
            .map(|h| (h.host.clone(), Role::Operator))
            .collect();
        HostList {
            now_ms: 1_760_000_000_000,
            hosts,
            roles,
            global_role: None,
        }
    };
    let per_host = encoded_len(&list(2))? - encoded_len(&list(1))?;
    let pages = pages(HostUpdate::whole(&list(fleet)), PAGE_BUDGET, MAX_FRAME_LEN)?;
    Ok((per_host, pages.len()))
}

pub(super) fn rows(n: usize, r: &Measured, raw: &Measured, heartbeat: Duration) -> Vec<Row> {
    let beats_per_s = (n - r.failed) as f64 / heartbeat.as_secs_f64();
    let us_per_beat = (r.idle_cpu_pct - raw.idle_cpu_pct) / 100.0 / beats_per_s * 1e6;
    let name = format!("3 fleet {}", grouped(n as i64));
    let failed = if r.failed + raw.failed > 0 {
        format!(
            " ({} relay / {} raw handshakes failed)",
            r.failed, raw.failed
        )
    } else {
        String::new()
    };
    vec![
        Row {
            scenario: name.clone(),
            metric: "server RSS per connected agent, KiB".into(),
            relay: format!("{:.1} (+{:.1} MiB)", r.rss_per_conn_kib, r.rss_delta_mib),
            raw: format!(
                "{:.1} (+{:.1} MiB)",
                raw.rss_per_conn_kib, raw.rss_delta_mib
            ),
            delta: format!("×{:.2}", r.rss_per_conn_kib / raw.rss_per_conn_kib),
            goal: "≤ 64 KiB".into(),
            verdict: Verdict::check(r.rss_per_conn_kib <= GOAL_RSS_KIB),
        },
        Row {
            scenario: name.clone(),
            metric: format!(
                "handshakes/s while connecting, {} in flight (server CPU ms each){failed}",
                swarm::IN_FLIGHT
            ),
            relay: format!(
                "{:.0} ({:.2} ms)",
                r.handshakes_per_s, r.cpu_ms_per_handshake
            ),
            raw: format!(
                "{:.0} ({:.2} ms)",
                raw.handshakes_per_s, raw.cpu_ms_per_handshake
            ),
            delta: format!("×{:.2}", r.handshakes_per_s / raw.handshakes_per_s),
            goal: "≥ 1,000/s".into(),
            verdict: Verdict::check(r.handshakes_per_s >= GOAL_HS),
        },
        Row {
            goal: "all shown online by watch_hosts".into(),
            verdict: Verdict::check(r.online_watch.is_ok()),
            ..Row::info(
                &name,
                "time from first connect until all online, s: watch_hosts (relay log)",
                format!(
                    "{} ({})",
                    match &r.online_watch {
                        Ok(d) => format!("{:.2}", d.as_secs_f64()),
                        Err(e) => format!("watch_hosts FAILED: {e}"),
                    },
                    r.online_log
                        .map_or("n/a".into(), |d| format!("{:.2}", d.as_secs_f64())),
                ),
            )
        },
        Row {
            scenario: name.clone(),
            metric: "server CPU, heartbeats every 3 s + QUIC keep-alives, % of a core".into(),
            relay: format!(
                "{:.2} ({us_per_beat:.0} µs per heartbeat above raw)",
                r.idle_cpu_pct
            ),
            raw: format!("{:.2} (keep-alives only)", raw.idle_cpu_pct),
            delta: format!("+{:.2}", r.idle_cpu_pct - raw.idle_cpu_pct),
            goal: String::new(),
            verdict: Verdict::Info,
        },
        Row::info(
            &name,
            "same, status changing every beat + 1 operator watching hosts",
            format!(
                "{:.1} % of a core; {:.1} updates/s of {:.0} KiB (changed hosts only)",
                r.busy_cpu_pct, r.updates_per_s, r.update_kib,
            ),
        ),
    ]
}
