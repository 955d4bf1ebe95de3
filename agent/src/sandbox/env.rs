//! The environment of OpenCode and its tools: an allow-list, never the agent's own variables
//! (tokens, proxy settings, `SSH_AUTH_SOCK`, the agent's `CM_*` settings).

use std::ffi::OsString;

/// The host variables passed through to a launch: the defaults, the ones the host lists in
/// `[sandbox] env`, and the ones the model providers reference as `{env:NAME}`.
pub fn allowed<'a>(
    host: impl IntoIterator<Item = (OsString, OsString)>,
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<(OsString, OsString)> {
    let names: Vec<&str> = super::config::DEFAULT_ENV
        .iter()
        .copied()
        .chain(names)
        .collect();
    host.into_iter()
        .filter(|(k, _)| k.to_str().is_some_and(|k| names.contains(&k)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_variables_pass() {
        let host = [
            ("PATH", "/usr/bin"),
            ("SSH_AUTH_SOCK", "/tmp/ssh-x/agent.1"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("CM_AGENT_CONFIG", "/etc/codemantle/agent.toml"),
            ("OPENAI_API_KEY", "sk-1"),
            ("CARGO_HOME", "/home/me/.cargo"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let got = allowed(host, ["OPENAI_API_KEY", "CARGO_HOME"]);
        let keys: Vec<_> = got
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(keys, ["PATH", "OPENAI_API_KEY", "CARGO_HOME"]);
    }
}
