//! The one result table: rows, a plain-text rendering for the terminal and a Markdown one for
//! `docs/performance.md`.

/// Whether a row meets its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The goal is met.
    Met,
    /// The goal is missed.
    Missed,
    /// No goal: context for another row.
    Info,
    /// The scenario could not run here (reason in the value column).
    Skipped,
}

impl Verdict {
    /// `met` when `ok`, else `MISSED`.
    pub fn check(ok: bool) -> Self {
        if ok { Self::Met } else { Self::Missed }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::Missed => "MISSED",
            Self::Info => "",
            Self::Skipped => "skipped",
        }
    }
}

/// One measured line.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scenario number and name, e.g. `1 hop 64 B`.
    pub scenario: String,
    /// What is measured, with units.
    pub metric: String,
    /// Through the relay.
    pub relay: String,
    /// Raw quinn baseline (or `—`).
    pub raw: String,
    /// Added latency or ratio to raw quinn.
    pub delta: String,
    /// The goal (or empty).
    pub goal: String,
    /// Met, missed, context.
    pub verdict: Verdict,
}

impl Row {
    /// A row without a baseline or goal.
    pub fn info(scenario: &str, metric: &str, relay: String) -> Self {
        Self {
            scenario: scenario.into(),
            metric: metric.into(),
            relay,
            raw: "—".into(),
            delta: "—".into(),
            goal: String::new(),
            verdict: Verdict::Info,
        }
    }

    fn cells(&self) -> [String; 7] {
        [
            self.scenario.clone(),
            self.metric.clone(),
            self.relay.clone(),
            self.raw.clone(),
            self.delta.clone(),
            self.goal.clone(),
            self.verdict.label().into(),
        ]
    }
}

const HEADINGS: [&str; 7] = [
    "scenario",
    "metric",
    "via relay",
    "raw quinn",
    "added / ratio",
    "goal",
    "verdict",
];

/// Column-aligned text for the terminal.
pub fn text_table(rows: &[Row]) -> String {
    let all: Vec<[String; 7]> = std::iter::once(HEADINGS.map(String::from))
        .chain(rows.iter().map(Row::cells))
        .collect();
    let mut widths = [0usize; 7];
    for r in &all {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for (i, r) in all.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join(" | ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("-+-"));
            out.push('\n');
        }
    }
    out
}

/// A Markdown table.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut out = format!("| {} |\n", HEADINGS.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(HEADINGS.len())));
    for r in rows {
        let cells = r.cells().map(|c| {
            if c.is_empty() {
                " ".into()
            } else {
                c.replace('|', "\\|")
            }
        });
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_one_line_per_row() {
        let rows = vec![Row::info("1 x", "m", "3".into())];
        assert_eq!(text_table(&rows).lines().count(), 3);
        assert_eq!(markdown_table(&rows).lines().count(), 3);
    }
}
