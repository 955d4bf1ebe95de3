//! Stopping the test's PostgreSQL server and starting it again on the same port and data.
//! `PgServer` only restarts (a blink); the fleet test needs the database away while it checks
//! what the relays do. The server is found by its port among the running `postgres`
//! processes; it is stopped and started with its own `pg_ctl`, as the user it runs as.

use crate::harness::WAIT;
use crate::pg_server::PgServer;
use anyhow::{Context, Result, bail};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The postmaster of one server: how it was started.
pub struct PgControl {
    bin: PathBuf,
    data: String,
    /// Its options after `-D DATA`, for `pg_ctl -o`.
    options: Vec<String>,
    uid: u32,
    gid: u32,
    port: u16,
}

/// The port in a `postgres://user@host:port/db` URL.
fn port_of(url: &str) -> Result<u16> {
    url.rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no port in {url}"))
}

/// Single quotes for the shell `pg_ctl` hands its `-o` options to.
fn quoted(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

impl PgControl {
    /// Finds the postmaster of `server`.
    pub fn of(server: &PgServer) -> Result<Self> {
        let port = port_of(&server.url())?;
        for entry in std::fs::read_dir("/proc")? {
            let Ok(entry) = entry else { continue };
            let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let [program, flag, data, options @ ..] = args.as_slice() else {
                continue;
            };
            let is_it = program.ends_with("/postgres")
                && flag == "-D"
                && options
                    .windows(2)
                    .any(|w| w[0] == "-p" && w[1] == port.to_string());
            if !is_it {
                continue;
            }
            let meta = std::fs::metadata(entry.path())?;
            return Ok(Self {
                bin: PathBuf::from(program)
                    .parent()
                    .context("postgres has no directory")?
                    .to_owned(),
                data: data.clone(),
                options: options.to_vec(),
                uid: meta.uid(),
                gid: meta.gid(),
                port,
            });
        }
        bail!("no postgres process listening on port {port}")
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<()> {
        let mut cmd = Command::new(self.bin.join("pg_ctl"));
        cmd.args(["-D", &self.data])
            .args(args)
            .env("LC_ALL", "C")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.uid != 0 {
            cmd.uid(self.uid).gid(self.gid);
        }
        // pg_ctl runs `postgres` through a shell in the current directory: one it may read.
        cmd.current_dir(
            PathBuf::from(&self.data)
                .parent()
                .context("data directory has no parent")?,
        );
        anyhow::ensure!(cmd.status()?.success(), "pg_ctl {args:?} failed");
        Ok(())
    }

    /// Stops the server (fast: connections are closed) and waits until it is gone.
    pub fn stop(&self) -> Result<()> {
        self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"])
    }

    /// Starts it again with the same options and waits until it accepts connections.
    pub fn start(&self) -> Result<()> {
        let options: Vec<String> = self.options.iter().map(|o| quoted(o)).collect();
        let log = PathBuf::from(&self.data)
            .with_file_name("server.log")
            .display()
            .to_string();
        let timeout = WAIT.as_secs().to_string();
        self.pg_ctl(&[
            "-l",
            &log,
            "-o",
            &options.join(" "),
            "-w",
            "-t",
            &timeout,
            "start",
        ])
        .with_context(|| format!("PostgreSQL did not start again on port {}", self.port))
    }
}
