//! Network namespaces (`ip netns`), their links and addresses, and `nft` tables inside them.
//! Every namespace is deleted on Drop (with it go its veth ends, addresses, routes and
//! firewall tables), also when a test panics. Names carry this process's id, so namespaces a
//! killed test run left behind are found and deleted by the next run.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Every namespace these tests create starts with this.
const PREFIX: &str = "cmnet-";

/// Runs `program args`, which must succeed; its stdout.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("{program} (scripts/install-test-deps.sh installs it)"))?;
    check(program, args, &out)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn check(program: &str, args: &[&str], out: &Output) -> Result<()> {
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// One network namespace, deleted on Drop.
pub struct Netns {
    pub name: String,
}

/// Whether the kernel lets this process create network namespaces: `false` (after a loud
/// message) only when it refuses (not root, or EPERM in a container). A missing `ip` is an
/// error, not a skip: scripts/install-test-deps.sh installs it.
pub fn namespaces_allowed() -> Result<bool> {
    sweep_stale()?;
    let probe = format!("{}-probe", unique_stem());
    let out = Command::new("ip")
        .args(["netns", "add", &probe])
        .output()
        .context("`ip` (iproute2) is missing: run scripts/install-test-deps.sh")?;
    if out.status.success() {
        let _ = Command::new("ip").args(["netns", "del", &probe]).output();
        // nft must work too (installed by the same script); an error here says what to do.
        run("nft", &["--version"])?;
        return Ok(true);
    }
    let why = String::from_utf8_lossy(&out.stderr);
    if why.contains("Operation not permitted") || why.contains("Permission denied") {
        eprintln!(
            "\n\n!!!!!!!! SKIPPED: the kernel refuses to create network namespaces here \
             (`ip netns add`: {}); run the netns tests as root on a machine or VM that allows \
             them !!!!!!!!\n\n",
            why.trim()
        );
        return Ok(false);
    }
    bail!("ip netns add {probe}: {}", why.trim())
}

/// Deletes namespaces of earlier runs whose process is gone.
fn sweep_stale() -> Result<()> {
    let Ok(list) = std::fs::read_dir("/run/netns") else {
        return Ok(());
    };
    for entry in list.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
        }
    }
    Ok(())
}

/// A fresh unique name stem for one lab: `cmnet-PID-N`.
pub fn unique_stem() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

impl Netns {
    /// Creates the namespace and brings its loopback up.
    pub fn add(name: String) -> Result<Self> {
        run("ip", &["netns", "add", &name])?;
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// `ip netns exec NAME PROGRAM ARGS` to completion, which must succeed; its stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A command that runs `program` inside this namespace (`ip netns exec` execs it, so the
    /// child's pid is the program's).
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Applies an `nft` script (`nft -f`) inside this namespace.
    pub fn nft(&self, script: &str) -> Result<()> {
        let file = tempfile::NamedTempFile::new()?;
        std::fs::write(file.path(), script)?;
        let path = file.path().to_string_lossy().into_owned();
        self.exec("nft", &["-f", &path])?;
        Ok(())
    }

    /// The path of the namespace's handle (for entering it from a thread).
    pub fn handle_path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// A veth pair: `local` in this namespace with `local_addrs`, `peer` in `other` with
    /// `peer_addrs` (CIDR), both up.
    pub fn veth(
        &self,
        local: &str,
        local_addrs: &[&str],
        other: &Self,
        peer: &str,
        peer_addrs: &[&str],
    ) -> Result<()> {
        self.ip(&[
            "link",
            "add",
            local,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "netns",
            &other.name,
        ])?;
        for a in local_addrs {
            self.ip(&["addr", "add", a, "dev", local])?;
        }
        for a in peer_addrs {
            other.ip(&["addr", "add", a, "dev", peer])?;
        }
        self.ip(&["link", "set", local, "up"])?;
        other.ip(&["link", "set", peer, "up"])?;
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("could not delete network namespace {}: {e:#}", self.name);
        }
    }
}

/// A named `nft` table in a namespace; [`Self::remove`] (or Drop) deletes it and so lifts its
/// rules. Dropping the namespace deletes it too.
pub struct NftTable {
    /// The namespace's name.
    ns: String,
    name: String,
    live: bool,
}

impl NftTable {
    /// Installs table `name` with one input chain holding `rules` (nft rule syntax, one per
    /// line). On input, so the sender's `sendto` succeeds and the packets just vanish, as on
    /// a network that drops them.
    pub fn input_rules(ns: &Netns, name: &str, rules: &[String]) -> Result<Self> {
        let mut script = format!(
            "table inet {name} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n"
        );
        for r in rules {
            script.push_str("    ");
            script.push_str(r);
            script.push('\n');
        }
        script.push_str("  }\n}\n");
        ns.nft(&script)?;
        Ok(Self {
            ns: ns.name.clone(),
            name: name.to_owned(),
            live: true,
        })
    }

    /// Deletes the table now.
    pub fn remove(mut self) -> Result<()> {
        self.live = false;
        self.delete()
    }

    fn delete(&self) -> Result<()> {
        run(
            "ip",
            &[
                "netns", "exec", &self.ns, "nft", "delete", "table", "inet", &self.name,
            ],
        )?;
        Ok(())
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        if self.live {
            let _ = self.delete();
        }
    }
}
