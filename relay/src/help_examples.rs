//! One check for all three binaries: every leaf subcommand's `--help` shows an example.

/// The paths (`cm-tui admin user add`) of leaf subcommands whose `after_help` has no "Example".
pub fn leaves_without_example(cmd: &clap::Command) -> Vec<String> {
    let mut out = Vec::new();
    walk(cmd, "", &mut out);
    out
}

fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
    let path = format!("{path} {}", cmd.get_name());
    let subs: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .collect();
    if subs.is_empty() {
        let help = cmd.get_after_help().map(ToString::to_string);
        if !help.is_some_and(|h| h.contains("Example")) {
            out.push(path.trim().to_owned());
        }
    }
    for s in subs {
        walk(s, &path, out);
    }
}
