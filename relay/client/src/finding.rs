//! One line of a `doctor` report: what was checked, and either a detail or the problem with
//! what to do about it. Shared by `cm-relay doctor` and `cm-agent doctor`.

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was checked.
    pub check: &'static str,
    /// `None` when fine; otherwise the problem and what to do.
    pub problem: Option<String>,
    /// A detail worth showing when fine (e.g. the pin).
    pub detail: String,
}

impl Finding {
    /// A passed check.
    pub fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            problem: None,
            detail: detail.into(),
        }
    }

    /// A failed check with what to do.
    pub fn fail(check: &'static str, problem: impl Into<String>) -> Self {
        Self {
            check,
            problem: Some(problem.into()),
            detail: String::new(),
        }
    }

    /// The line to print.
    pub fn line(&self) -> String {
        match &self.problem {
            None => format!("ok    {:<14} {}", self.check, self.detail),
            Some(p) => format!("FAIL  {:<14} {p}", self.check),
        }
    }
}

/// Prints one line per finding on stdout and returns how many failed.
pub fn print_report(findings: &[Finding]) -> usize {
    for f in findings {
        println!("{}", f.line());
    }
    findings.iter().filter(|f| f.problem.is_some()).count()
}
