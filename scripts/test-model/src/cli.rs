//! Command-line parsing for the `cm-test-model` binary (std only, no parser crate).

use std::net::SocketAddr;
use std::path::PathBuf;

use cm_test_model::Config;

/// `--help` text.
pub(crate) const USAGE: &str = "\
cm-test-model: a local OpenAI-compatible test model for OpenCode, scripted by the prompt text.

Usage: cm-test-model [--listen ADDR] [--log FILE]

Options:
  --listen ADDR   address to bind (default 127.0.0.1:0 = a free port)
  --log FILE      append every received request to FILE as one JSON line
  -h, --help      print this help

Once bound it prints `cm-test-model listening on http://ADDR` on stdout and serves
POST /v1/chat/completions and GET /v1/models until SIGINT or SIGTERM.

Scripts (text of the last user message): RUN_BASH: <cmd> | WRITE_FILE: <path> <content> |
TOOL: <name> <json> | SLOW [<n> <ms>] | FAIL400 | FAIL500 | ECHO_DELTAS: <n> | anything else
(echoed as `Hello from mock LLM. You said: <text>`).

Example:
  cm-test-model --listen 127.0.0.1:4101 --log /tmp/mock_requests.jsonl
  # opencode.json: provider.mock.options.baseURL = \"http://127.0.0.1:4101/v1\"
";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Run the server.
    Serve(Config),
    /// Print [`USAGE`].
    Help,
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut config = Config::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--listen" => {
                let text = value("--listen")?;
                config.listen = text
                    .parse::<SocketAddr>()
                    .map_err(|e| format!("--listen {text:?}: {e} (expected e.g. 127.0.0.1:0)"))?;
            }
            "--log" => config.log_file = Some(PathBuf::from(value("--log")?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Command::Serve(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn defaults_to_a_free_local_port() {
        assert_eq!(parse_strs(&[]), Ok(Command::Serve(Config::default())));
    }

    #[test]
    fn reads_listen_and_log_in_both_forms() {
        let expected = Config {
            listen: "127.0.0.1:4101".parse().unwrap(),
            log_file: Some(PathBuf::from("/tmp/x.jsonl")),
        };
        assert_eq!(
            parse_strs(&["--listen", "127.0.0.1:4101", "--log", "/tmp/x.jsonl"]),
            Ok(Command::Serve(expected.clone()))
        );
        assert_eq!(
            parse_strs(&["--listen=127.0.0.1:4101", "--log=/tmp/x.jsonl"]),
            Ok(Command::Serve(expected))
        );
    }

    #[test]
    fn help_and_errors() {
        assert_eq!(parse_strs(&["--help"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["-h"]), Ok(Command::Help));
        assert!(
            parse_strs(&["--listen"])
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            parse_strs(&["--listen", "nope"])
                .unwrap_err()
                .contains("expected")
        );
        assert!(parse_strs(&["--bogus"]).unwrap_err().contains("unknown"));
    }
}
