//! A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, started with
//! `pg_ctl` on 127.0.0.1 at a port the OS chose, stopped (and its directory removed) on drop.
//! When the tests run as root, the server runs as `nobody` (PostgreSQL refuses to run as root).
//! Without PostgreSQL's binaries (`scripts/install-test-deps.sh` installs them) a test that
//! asks for a server is skipped with a loud message.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The unprivileged user the server runs as when the tests run as root.
const NOBODY: (u32, u32) = (65_534, 65_534);

/// A running server; dropped = stopped.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    run_as: Option<(u32, u32)>,
    /// The TLS part of the server's options (empty without TLS).
    tls_options: String,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres` (the newest installed), if any.
fn server_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CM_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// A port the OS picked as free on 127.0.0.1 (PostgreSQL cannot be told to pick one itself).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl PgServer {
    /// Starts a server, or `None` (after a loud message) when PostgreSQL is not installed.
    ///
    /// # Panics
    /// PostgreSQL is installed but the server does not start (its log is printed).
    #[must_use]
    pub fn start() -> Option<Self> {
        Self::start_with_tls(None)
    }

    /// Starts a server that also accepts TLS with this certificate and key (PEM), or `None`
    /// when PostgreSQL is not installed.
    ///
    /// # Panics
    /// As [`Self::start`].
    #[must_use]
    pub fn start_with_tls(tls: Option<(&str, &str)>) -> Option<Self> {
        let Some(bin) = server_bin_dir() else {
            eprintln!(
                "\n\n!!!!!!!! SKIPPED: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb); \
                 run scripts/install-test-deps.sh to test the PostgreSQL store !!!!!!!!\n\n"
            );
            return None;
        };
        let run_as = is_root().then_some(NOBODY);
        let dir = tempfile::Builder::new()
            .prefix("cm-pg-")
            .tempdir()
            .expect("temporary directory for PostgreSQL");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("hand the temporary directory to the server's user");
        }
        let mut server = Self {
            bin,
            dir,
            port: 0,
            run_as,
            tls_options: String::new(),
        };
        server.run(
            "initdb",
            &[
                "-D",
                &server.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-N",
                "-E",
                "UTF8",
            ],
        );
        if let Some((cert, key)) = tls {
            for (name, pem) in [("server.crt", cert), ("server.key", key)] {
                let path = server.dir.path().join(name);
                std::fs::write(&path, pem).expect("write the server's TLS files");
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .expect("make the key private");
                if let Some((uid, gid)) = run_as {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                        .expect("hand the TLS files to the server's user");
                }
            }
            server.tls_options =
                " -c ssl=on -c ssl_cert_file=../server.crt -c ssl_key_file=../server.key"
                    .to_owned();
        }
        // The OS-chosen port may be taken again before the server binds it: try a few.
        for _ in 0..5 {
            server.port = free_port().expect("a free port on 127.0.0.1");
            if server.pg_ctl_start() {
                return Some(server);
            }
            eprintln!(
                "PostgreSQL did not start on port {}: {}",
                server.port,
                std::fs::read_to_string(server.log()).unwrap_or_default()
            );
        }
        panic!("PostgreSQL did not start (see the logs above)");
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Starts the server on its data directory and port; whether it came up.
    fn pg_ctl_start(&self) -> bool {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories='' -c fsync=off \
             -c synchronous_commit=off -c max_connections=200{}",
            self.port, self.tls_options
        );
        // With a log file and no pipes: the server would hold a pipe open forever.
        self.command("pg_ctl")
            .args(["-D", &self.data(), "-l"])
            .arg(self.log())
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops the server (fast: open connections are closed), keeping its data and port for
    /// [`Self::start_again`].
    ///
    /// # Panics
    /// The server does not stop.
    pub fn stop(&self) {
        let ok = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-m", "fast", "-w", "-t", "60", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "PostgreSQL did not stop");
    }

    /// Starts a stopped server again on the same data and port.
    ///
    /// # Panics
    /// The server does not come back (its log is printed).
    pub fn start_again(&self) {
        assert!(
            self.pg_ctl_start(),
            "PostgreSQL did not start again: {}",
            std::fs::read_to_string(self.log()).unwrap_or_default()
        );
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env("LC_ALL", "C").current_dir(self.dir.path());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Restarts the server (same port and options), closing every connection.
    ///
    /// # Panics
    /// The server does not come back.
    pub fn restart(&self) {
        // With a log file and no pipes: the new server would hold a pipe open forever.
        let ok = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-l"])
            .arg(self.dir.path().join("server.log"))
            .args(["-m", "fast", "-w", "-t", "60", "restart"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "PostgreSQL did not restart");
    }

    /// A URL for the `postgres` database as the superuser `postgres` (no password).
    #[must_use]
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// A URL for database `db`.
    #[must_use]
    pub fn url_of(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
