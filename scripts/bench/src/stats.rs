//! Percentiles over latency samples, and number formatting for the table.

use std::time::Duration;

/// p50 / p99 / p99.9 of a set of samples, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Number of samples.
    pub n: usize,
}

/// The nearest-rank percentile `q` (0..=1) of sorted `v`.
fn rank(v: &[Duration], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let idx = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx].as_secs_f64() * 1e6
}

impl Percentiles {
    /// Percentiles of `samples` (sorted here).
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self {
            p50: rank(&samples, 0.50),
            p99: rank(&samples, 0.99),
            p999: rank(&samples, 0.999),
            n: samples.len(),
        }
    }

    /// `self - base`, percentile by percentile (the "added" latency).
    pub fn minus(&self, base: &Self) -> Self {
        Self {
            p50: self.p50 - base.p50,
            p99: self.p99 - base.p99,
            p999: self.p999 - base.p999,
            n: self.n,
        }
    }

    /// "p50 / p99 / p99.9" in µs.
    pub fn three(&self) -> String {
        format!("{} / {} / {}", us(self.p50), us(self.p99), us(self.p999))
    }

    /// "p50 / p99" in µs.
    pub fn two(&self) -> String {
        format!("{} / {}", us(self.p50), us(self.p99))
    }
}

/// Microseconds, one decimal below 100, thousands separated above.
pub fn us(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v.abs() < 100.0 {
        format!("{v:.1}")
    } else {
        grouped(v.round() as i64)
    }
}

/// An integer with thousands separators (`12,345`).
pub fn grouped(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        let p = Percentiles::of(v);
        let rounded = [p.p50, p.p99, p.p999].map(f64::round);
        assert_eq!(rounded, [500.0, 990.0, 999.0]);
    }

    #[test]
    fn formatting() {
        assert_eq!(us(42.04), "42.0");
        assert_eq!(us(12_345.4), "12,345");
        assert_eq!(grouped(-1_000), "-1,000");
    }
}
