//! Parsing `git clone --progress` output (stderr, lines ended by `\r` or `\n`) into typed
//! progress: `Receiving objects:  45% (450/1000), 1.20 MiB | 2.30 MiB/s` is phase
//! `Receiving objects`, 45 %, 1.2 MiB. Sans-IO.

use proto::git::GitProgress;

/// One line of git's progress output; `None` for anything else (`Cloning into '.'...`,
/// warnings, errors).
pub fn parse_line(line: &str) -> Option<GitProgress> {
    let line = line.trim();
    let line = line.strip_prefix("remote:").map_or(line, str::trim_start);
    let (phase, rest) = line.split_once(": ")?;
    if phase.is_empty()
        || phase.len() > 40
        || !phase.chars().all(|c| c.is_ascii_alphabetic() || c == ' ')
    {
        return None;
    }
    let rest = rest.trim_start();
    let percent = rest
        .split_once('%')
        .and_then(|(n, _)| n.trim().parse::<u8>().ok())
        .filter(|p| *p <= 100);
    let bytes = rest
        .split_once(", ")
        .and_then(|(_, after)| after.split('|').next())
        .and_then(size);
    if percent.is_none() && bytes.is_none() && !rest.chars().next()?.is_ascii_digit() {
        return None;
    }
    Some(GitProgress {
        phase: phase.to_owned(),
        percent,
        bytes,
    })
}

/// `1.20 MiB`, `372 bytes`, `12.00 KiB` → bytes.
fn size(s: &str) -> Option<u64> {
    let (n, unit) = s.trim().split_once(' ')?;
    let n: f64 = n.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "byte" | "bytes" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let v = (n * mult).round();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a non-negative, rounded value far below u64::MAX"
    )]
    (0.0..1.0e18).contains(&v).then_some(v as u64)
}

/// Splits git's stderr into lines at `\r` and `\n` (progress rewrites its line with `\r`).
pub fn lines(buf: &str) -> impl Iterator<Item = &str> {
    buf.split(['\r', '\n']).filter(|l| !l.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(phase: &str, percent: Option<u8>, bytes: Option<u64>) -> Option<GitProgress> {
        Some(GitProgress {
            phase: phase.into(),
            percent,
            bytes,
        })
    }

    #[test]
    fn git_progress_lines_become_typed_progress() {
        assert_eq!(
            parse_line("Receiving objects:  45% (450/1000), 1.20 MiB | 2.30 MiB/s"),
            p("Receiving objects", Some(45), Some(1_258_291))
        );
        assert_eq!(
            parse_line("Receiving objects: 100% (3/3), 372 bytes | 372.00 KiB/s, done."),
            p("Receiving objects", Some(100), Some(372))
        );
        assert_eq!(
            parse_line("remote: Counting objects: 100% (3/3), done."),
            p("Counting objects", Some(100), None)
        );
        assert_eq!(
            parse_line("remote: Enumerating objects: 3, done."),
            p("Enumerating objects", None, None)
        );
        assert_eq!(
            parse_line("Resolving deltas:  12% (1/8)"),
            p("Resolving deltas", Some(12), None)
        );
        for other in [
            "Cloning into '.'...",
            "warning: You appear to have cloned an empty repository.",
            "fatal: repository 'x' not found",
            "error: RPC failed; HTTP 302",
            "",
        ] {
            assert_eq!(parse_line(other), None, "{other}");
        }
        let out = "Cloning into '.'...\nReceiving objects:  50% (1/2)\rReceiving objects: 100% (2/2), done.\n";
        let last = lines(out).filter_map(parse_line).last();
        assert_eq!(last, p("Receiving objects", Some(100), None));
    }
}
