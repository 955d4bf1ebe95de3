//! The permission commands that show what an approval approves: the pending list with each
//! request's diff or command (`permissions`), `approve --always` with its confirmation, and the
//! standing grants an "always" leaves (`permissions --always`, `permissions --revoke`).

use crate::remote::{Remote, Target};
use crate::view::permission::detail;
use crate::view::text::{Row, Tone, sanitize};
use proto::grant::{GrantRevoke, StandingGrant, describe};
use proto::op;
use proto::ops::{Pending, PermissionAnswer, PermissionReply, PermissionRequest, QuestionRequest};
use std::io::{BufRead, IsTerminal, Write};

/// The lines `cm-tui permissions` prints for a pending question: its id and session, then each
/// question with its choices (all from the model: sanitized).
pub fn question_lines(q: &QuestionRequest) -> Vec<String> {
    let mut lines = vec![format!(
        "{} question   {}",
        sanitize(&q.id),
        sanitize(&q.session)
    )];
    for (n, question) in crate::app::question::parse(&q.questions).iter().enumerate() {
        let header = if question.header.is_empty() {
            String::new()
        } else {
            format!("[{}] ", question.header)
        };
        lines.push(format!("  {}. {header}{}", n + 1, question.text));
        let choices: Vec<&str> = question.options.iter().map(|(l, _)| l.as_str()).collect();
        if !choices.is_empty() {
            let how = if question.multiple {
                "choose any, comma-separated"
            } else {
                "choose one"
            };
            lines.push(format!("     {how}: {}", choices.join(" | ")));
        }
    }
    lines
}

/// What an "always" should cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlwaysScope {
    /// What the request offers (its `always` patterns; `*` for edits: every file).
    Offered,
    /// Only the request's own patterns: this file, this exact command.
    ThisOnly,
}

/// Pending requests as text: one header line each, then what it would do (an edit's diff, a
/// command and where it runs), then what "always" would allow.
pub fn print_pending(pending: &Pending, out: &mut impl Write) -> std::io::Result<()> {
    if pending.permissions.is_empty() && pending.questions.is_empty() {
        writeln!(out, "nothing pending")?;
    }
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for p in &pending.permissions {
        writeln!(
            out,
            "{} {:<10} {}",
            sanitize(&p.id),
            sanitize(&p.permission),
            sanitize(&p.session)
        )?;
        for row in detail(p) {
            writeln!(out, "    {}", painted(&row, colour))?;
        }
        if !p.always.is_empty() {
            writeln!(
                out,
                "    --always would allow {}",
                sanitize(&describe(&p.permission, &p.always))
            )?;
        }
    }
    for q in &pending.questions {
        writeln!(out, "{}", question_lines(q).join("\n"))?;
    }
    Ok(())
}

/// A row as text, with ANSI colours for the diff when `colour`.
fn painted(row: &Row, colour: bool) -> String {
    row.spans
        .iter()
        .map(|s| {
            let code = match s.look.tone {
                Tone::Added => "32",
                Tone::Removed => "31",
                Tone::Hunk => "36",
                Tone::FileHeader => "1",
                Tone::Muted => "2",
                _ => "",
            };
            if colour && !code.is_empty() {
                format!("\u{1b}[{code}m{}\u{1b}[0m", s.text)
            } else {
                s.text.clone()
            }
        })
        .collect()
}

/// The patterns an "always" of `scope` grants for `request`.
pub fn always_patterns(request: &PermissionRequest, scope: AlwaysScope) -> Vec<String> {
    match scope {
        AlwaysScope::Offered => request.always.clone(),
        AlwaysScope::ThisOnly => request.patterns.clone(),
    }
}

/// Failures of these commands.
#[derive(Debug, thiserror::Error)]
pub enum GrantsCliError {
    /// The relay or agent refused, or the connection failed.
    #[error(transparent)]
    Link(#[from] cm_client::LinkError),
    /// No pending permission request with that id.
    #[error(
        "no pending permission request {0} (already answered, or the turn ended); see `cm-tui permissions`"
    )]
    NotPending(String),
    /// Not confirmed, and no terminal to ask on.
    #[error(
        "--always would allow {0}; there is no terminal to confirm on, so pass --yes to confirm it"
    )]
    Unconfirmed(String),
    /// The operator said no.
    #[error("not allowed: the request is still pending")]
    Declined,
    /// The request offers nothing to allow always.
    #[error("request {0} offers nothing to allow always; approve it once instead")]
    NothingOffered(String),
    /// Output failed.
    #[error(transparent)]
    Output(#[from] std::io::Error),
    /// Encoding JSON output failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// `approve HOST WORKSPACE REQUEST_ID --always [--this-only] [--yes]`: says in words what the
/// grant allows, asks (or takes `--yes`), then answers.
///
/// # Errors
/// Refusals, an unconfirmed or declined grant, transport failures.
pub async fn approve_always(
    remote: &Remote,
    target: &Target,
    request_id: String,
    scope: AlwaysScope,
    yes: bool,
    message: Option<String>,
) -> Result<(), GrantsCliError> {
    let pending: Pending = remote.call::<op::PermissionList>(target, &()).await?;
    let Some(request) = pending.permissions.iter().find(|p| p.id == request_id) else {
        return Err(GrantsCliError::NotPending(request_id));
    };
    let patterns = always_patterns(request, scope);
    if patterns.is_empty() {
        return Err(GrantsCliError::NothingOffered(request_id));
    }
    let words = sanitize(&describe(&request.permission, &patterns));
    if !yes {
        confirm(&words, request)?;
    }
    let body = PermissionReply {
        request_id: request_id.clone(),
        answer: PermissionAnswer::Always,
        message,
        always_patterns: Some(patterns),
    };
    let target = target.clone().with_session(Some(request.session.clone()));
    let _: bool = remote.call::<op::PermissionReply>(&target, &body).await?;
    println!(
        "{request_id}: allowed; from now on the agent allows {words} (list: cm-tui permissions {} {} --always)",
        target.host,
        target.workspace.as_deref().unwrap_or_default()
    );
    Ok(())
}

/// Asks on the terminal; refuses without one.
fn confirm(words: &str, request: &PermissionRequest) -> Result<(), GrantsCliError> {
    if !std::io::stdin().is_terminal() {
        return Err(GrantsCliError::Unconfirmed(words.to_owned()));
    }
    let mut err = std::io::stderr().lock();
    writeln!(err, "request {}:", sanitize(&request.id))?;
    for row in detail(request) {
        writeln!(err, "    {}", row.text())?;
    }
    write!(err, "Allow {words}? [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(GrantsCliError::Declined)
    }
}

/// `permissions HOST WORKSPACE --always [--json]`: the standing grants.
///
/// # Errors
/// Refusals and transport failures.
pub async fn list(remote: &Remote, target: &Target, json: bool) -> Result<(), GrantsCliError> {
    let grants: Vec<StandingGrant> = remote.call::<op::PermissionGrants>(target, &()).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&grants)?)?;
        return Ok(());
    }
    print_grants(&grants, &mut out)?;
    Ok(())
}

/// Grants as text, one line each: id, session, who, uses, and what it allows in words.
pub fn print_grants(grants: &[StandingGrant], out: &mut impl Write) -> std::io::Result<()> {
    if grants.is_empty() {
        writeln!(out, "no standing grants")?;
    }
    for g in grants {
        writeln!(
            out,
            "{} {} by {} ({} used): {}",
            sanitize(&g.id),
            sanitize(&g.session),
            sanitize(g.granted_by.as_str()),
            g.uses,
            sanitize(&g.describe())
        )?;
    }
    Ok(())
}

/// `permissions HOST WORKSPACE --revoke GRANT_ID [--json]`.
///
/// # Errors
/// Refusals (unknown grant, role) and transport failures.
pub async fn revoke(
    remote: &Remote,
    target: &Target,
    id: String,
    json: bool,
) -> Result<(), GrantsCliError> {
    let grant: StandingGrant = remote
        .call::<op::PermissionRevoke>(target, &GrantRevoke { id })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&grant)?);
    } else {
        println!(
            "{}: revoked; matching requests ask again ({})",
            sanitize(&grant.id),
            sanitize(&grant.describe())
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit() -> PermissionRequest {
        PermissionRequest {
            id: "per_1".into(),
            session: "ses_1".into(),
            permission: "edit".into(),
            patterns: vec!["notes/a.txt".into()],
            metadata: serde_json::json!({"diff": "Index: /w/notes/a.txt\n====\n--- /w/notes/a.txt\n+++ /w/notes/a.txt\n@@ -0,0 +1 @@\n+hi\n"}),
            always: vec!["*".into()],
        }
    }

    #[test]
    fn the_pending_list_shows_each_edits_diff_and_what_always_would_allow() {
        let pending = Pending {
            permissions: vec![edit()],
            questions: vec![],
        };
        let mut out = Vec::new();
        print_pending(&pending, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        insta::assert_snapshot!(text, @r"
        per_1 edit       ses_1
            notes/a.txt
            --- /w/notes/a.txt
            +++ /w/notes/a.txt
            @@ -0,0 +1 @@
            +hi
            --always would allow every edit of any file in this session until OpenCode restarts
        ");
    }

    #[test]
    fn always_for_this_file_grants_the_files_own_pattern() {
        assert_eq!(always_patterns(&edit(), AlwaysScope::Offered), ["*"]);
        assert_eq!(
            always_patterns(&edit(), AlwaysScope::ThisOnly),
            ["notes/a.txt"]
        );
    }
}
