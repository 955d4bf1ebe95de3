//! `cm-bench` binary: runs the scenarios, prints one table, optionally writes it into
//! `docs/performance.md`.

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use cm_bench::{Options, Row, report};
use std::path::PathBuf;
use std::time::Instant;

/// CodeMantle benchmarks: the relay side by side with raw QUIC on this machine.
#[derive(Debug, Parser)]
#[command(version, args_override_self = true)]
struct Cli {
    /// Tiny sizes: every scenario in seconds (for CI).
    #[arg(long)]
    smoke: bool,
    /// Scenarios to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Scenario>,
    /// Sequential round trips per payload size (scenario 1).
    #[arg(long)]
    round_trips: Option<usize>,
    /// Bulk stream size in MiB (scenario 2; the 1 GiB is 1024).
    #[arg(long)]
    bulk_mib: Option<u64>,
    /// Simulated agent counts, e.g. 1000,5000 (scenario 3).
    #[arg(long, value_delimiter = ',')]
    agents: Vec<usize>,
    /// Watcher counts, e.g. 1,100 (scenario 4).
    #[arg(long, value_delimiter = ',')]
    watchers: Vec<usize>,
    /// Scenario 8: only the hop rows (no kill switch, no agents spread over the relays).
    #[arg(long)]
    peering_hops_only: bool,
    /// Where the release cm-relay and cm-agent are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Parent directory for the relays' temporary state (default: the system temp dir).
    #[arg(long)]
    state_base: Option<PathBuf>,
    /// The `cm-tui` frame bench executable (scenario 6; `scripts/bench.sh` builds it).
    #[arg(long)]
    tui_frame_bin: Option<PathBuf>,
    /// Write the table, machine description and method to this Markdown file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Internal: the raw-quinn server process for the fleet baseline.
    #[command(hide = true)]
    RawServer {
        #[arg(long)]
        state_dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Latency,
    Throughput,
    Fleet,
    Streaming,
    /// Scenario 4 with a real `opencode serve` and the test model.
    Opencode,
    Startup,
    /// Scenario 7: HTTP through `port_forward` vs direct.
    Forward,
    /// Scenario 8: a fleet of relays on PostgreSQL (cross-relay hop, 10,000 agents on 3 relays).
    Peering,
    /// Scenario 13: signed headers and end-to-end sealing vs plain (issue #20).
    #[value(alias = "zero_trust")]
    ZeroTrust,
    /// Scenario 14: the TCP path (QUIC in TLS over TCP) vs QUIC vs raw quinn (issue #21).
    Transport,
    /// Scenario 15: from an agent's permission notice to the webhook POST (issue #22).
    Notify,
}

type Runner = fn(&Options) -> Result<Vec<Row>>;

const ALL: [(Scenario, Runner); 11] = [
    (Scenario::Latency, cm_bench::latency::run),
    (Scenario::Throughput, cm_bench::throughput::run),
    (Scenario::Fleet, cm_bench::fleet::run),
    (Scenario::Streaming, cm_bench::streaming::run),
    (Scenario::Opencode, cm_bench::opencode_stream::run),
    (Scenario::Startup, cm_bench::startup::run),
    (Scenario::Forward, cm_bench::forward::run),
    (Scenario::Peering, cm_bench::peering::run),
    (Scenario::ZeroTrust, cm_bench::zero_trust::run),
    (Scenario::Transport, cm_bench::transport::run),
    (Scenario::Notify, cm_bench::notify::run),
];

fn options(cli: &Cli) -> Options {
    let mut o = if cli.smoke {
        Options::smoke(cli.bin_dir.clone())
    } else {
        Options::full(cli.bin_dir.clone())
    };
    if let Some(n) = cli.round_trips {
        o.round_trips = n;
    }
    if let Some(m) = cli.bulk_mib {
        o.bulk_mib = m;
    }
    if !cli.agents.is_empty() {
        o.agents = cli.agents.clone();
    }
    if !cli.watchers.is_empty() {
        o.watchers = cli.watchers.clone();
    }
    o.state_base = cli.state_base.clone();
    o.peering_hops_only = cli.peering_hops_only;
    o
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::RawServer { state_dir }) = &cli.command {
        return cm_bench::rawserver::run(state_dir);
    }
    let opts = options(&cli);
    let machine = cm_bench::machine::describe();
    let started = Instant::now();
    let mut rows = Vec::new();
    for (which, run) in ALL {
        if !cli.only.is_empty() && !cli.only.contains(&which) {
            continue;
        }
        let t = Instant::now();
        eprintln!("cm-bench: {which:?}…");
        rows.extend(run(&opts)?);
        eprintln!(
            "cm-bench: {which:?} took {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    rows.push(tui_frame_row(cli.tui_frame_bin.as_deref(), opts.smoke)?);
    let took = started.elapsed();
    println!("{}", report::text_table(&rows));
    if opts.smoke {
        println!(
            "(smoke sizes: the scenarios work; the numbers and verdicts are not representative)"
        );
    }
    if let Some(path) = &cli.markdown {
        let doc = cm_bench::doc::render(&rows, &machine, &opts, took);
        std::fs::write(path, doc)?;
        eprintln!("cm-bench: wrote {}", path.display());
    }
    eprintln!("cm-bench: done in {:.0} s", took.as_secs_f64());
    Ok(())
}

/// Scenario 6 from the `cm-tui` frame bench, when it was built and handed over.
fn tui_frame_row(bin: Option<&std::path::Path>, smoke: bool) -> Result<Row> {
    let Some(bin) = bin else {
        return Ok(Row::info(
            "6 TUI frame",
            "frame time with 10,000 messages",
            "not run: pass --tui-frame-bin (scripts/bench.sh does)".into(),
        ));
    };
    eprintln!("cm-bench: TUI frame…");
    let (size, frames) = if smoke { (300, 10) } else { (10_000, 200) };
    let output = cm_bench::tui_frame::run(bin, size, frames)?;
    cm_bench::tui_frame::row(&output)
        .ok_or_else(|| anyhow::anyhow!("the frame bench printed no table row:\n{output}"))
}
