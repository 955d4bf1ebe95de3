//! Where audit rows nobody waits for go while the database is away: an append-only file in
//! the relay's state directory (`audit-spool.jsonl`, mode 0600), one JSON line per row with its
//! original time, written and synced (one `fsync` per batch) by the store's writer thread.
//! When the database is back, the spooled rows are appended to the one chain, in order and
//! before any newer row, and the file is emptied.
//!
//! Never twice: every line carries the spool's generation (random, chosen when the file starts
//! empty) and its sequence number. The transaction that appends spooled rows to the chain also
//! records, in the `settings` row `audit_spool:<generation>`, the last sequence number it
//! appended; the file is emptied only after that commit. After a crash between the commit and
//! the emptying, the next flush skips every line at or below the recorded number. The writer
//! also reserves numbers for the rows it appends directly ([`AuditSpool::reserve`]) and records
//! them the same way, so a batch whose commit landed but was reported failed (the connection
//! dropped during `COMMIT`) is spooled under those numbers and skipped by the flush.
//!
//! A torn last line (a crash in the middle of an append) is cut off with a warning when the
//! file is opened; a failed append (a full disk) is cut off at once, so the next row starts on
//! a line of its own.
//!
//! Bounded: past [`SPOOL_CAP_BYTES`], rows are counted instead of written one by one, and the
//! count is written as one summary row (at most every [`SUMMARY_EVERY_MS`], and before each
//! flush), so a flood while the database is away cannot fill the disk. A flush reads the file
//! one chunk at a time.

use super::{AuditEvent, StoreError};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// The file's name in the state directory.
pub const SPOOL_FILE: &str = "audit-spool.jsonl";

/// At most this many spooled rows are appended in one transaction.
const FLUSH_CHUNK: usize = 512;

/// Past this size the spool counts rows instead of writing them (see [`AuditSpool::append`]).
pub(crate) const SPOOL_CAP_BYTES: u64 = 64 * 1024 * 1024;

/// Past the cap, a summary row of the rows not written is appended at most this often.
const SUMMARY_EVERY_MS: u64 = 60_000;

/// The `op` of the summary row of rows counted past the cap.
pub(crate) const NOT_SPOOLED_OP: &str = "audit_rows_not_spooled";

/// One spooled row (one line of the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SpooledRow {
    /// The spool's generation.
    pub(crate) generation: String,
    /// Position in the generation, from 1.
    pub(crate) seq: u64,
    /// When the row was recorded (unix ms), kept as its time in the chain.
    pub(crate) ts_ms: u64,
    /// The row.
    pub(crate) event: AuditEvent,
}

/// What the spool needs of the store it flushes into.
pub(crate) trait SpoolSink {
    /// The last sequence number of `generation` already appended to the chain.
    ///
    /// # Errors
    /// Database failures.
    fn spool_mark(&self, generation: &str) -> Result<Option<u64>, StoreError>;
    /// Appends `rows` to the chain and records `seq` as the last appended of `generation`,
    /// in one transaction.
    ///
    /// # Errors
    /// Database failures: nothing was appended.
    fn append_spooled(
        &self,
        rows: &[(u64, &AuditEvent)],
        generation: &str,
        seq: u64,
    ) -> Result<(), StoreError>;
}

/// The `settings` key that records how far `generation` was appended.
pub(crate) fn mark_key(generation: &str) -> String {
    format!("audit_spool:{generation}")
}

/// The spool file, open for appending.
#[derive(Debug)]
pub struct AuditSpool {
    path: PathBuf,
    file: File,
    generation: String,
    next_seq: u64,
    /// Rows in the file (the spool is empty when zero and nothing is counted past the cap).
    rows: usize,
    /// Bytes of complete lines in the file.
    bytes: u64,
    /// Past this many bytes, rows are counted, not written.
    cap: u64,
    /// Rows counted past the cap and not yet written as a summary row.
    untold: Untold,
    /// Test hook: the next write stops after this many bytes and fails (a full disk).
    #[cfg(test)]
    fail_next_write_after: Option<usize>,
}

/// Rows not written past the cap, by operation.
#[derive(Debug, Default)]
struct Untold {
    /// `(op, count)` in first-seen order.
    by_op: Vec<(String, u64)>,
    /// When the first of them was recorded (unix ms).
    since_ms: Option<u64>,
    /// When the last summary row was written (unix ms).
    last_summary_ms: u64,
}

impl Untold {
    fn count(&mut self, rows: &[(u64, u64, &AuditEvent)]) {
        for (_, ts_ms, event) in rows {
            self.since_ms.get_or_insert(*ts_ms);
            match self.by_op.iter_mut().find(|(op, _)| *op == event.op) {
                Some((_, n)) => *n = n.saturating_add(1),
                None => self.by_op.push((event.op.clone(), 1)),
            }
        }
    }

    fn total(&self) -> u64 {
        self.by_op.iter().map(|(_, n)| n).sum()
    }

    /// The summary row of what was counted (which is then forgotten), if anything was.
    fn take_summary(&mut self, cap: u64, now_ms: u64) -> Option<AuditEvent> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let ops = self
            .by_op
            .iter()
            .map(|(op, n)| format!("{op} x{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let since = self.since_ms.unwrap_or(now_ms);
        self.by_op.clear();
        self.since_ms = None;
        self.last_summary_ms = now_ms;
        Some(AuditEvent {
            actor: "-".into(),
            op: NOT_SPOOLED_OP.into(),
            decision: "deny".into(),
            reason: Some(format!(
                "{total} audit rows ({ops}) since {since} ms were counted, not written one by \
                 one: the audit spool reached its cap of {cap} bytes while the database was away"
            )),
            ..AuditEvent::default()
        })
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("{}: {e}", path.display()))
}

fn new_generation() -> String {
    format!("{:016x}", crate::time::random_u64())
}

impl AuditSpool {
    /// Opens (or creates, mode 0600) the spool at `path`. A torn last line is cut off with a
    /// warning.
    ///
    /// # Errors
    /// The file cannot be created, read or repaired.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io(path, e))?;
        let mut spool = Self {
            path: path.to_owned(),
            file,
            generation: new_generation(),
            next_seq: 1,
            rows: 0,
            bytes: 0,
            cap: SPOOL_CAP_BYTES,
            untold: Untold::default(),
            #[cfg(test)]
            fail_next_write_after: None,
        };
        let mut last = None;
        let complete_len = spool.each_row(|row| {
            spool_rows_seen(&mut last, row);
            Ok(())
        })?;
        let len = spool.file.metadata().map_err(|e| io(path, e))?.len();
        if complete_len < len {
            tracing::warn!(
                spool = %path.display(),
                bytes = len - complete_len,
                "the audit spool ends with a torn line (the relay stopped while writing it); \
                 it is cut off"
            );
            spool.file.set_len(complete_len).map_err(|e| io(path, e))?;
            spool.file.sync_all().map_err(|e| io(path, e))?;
        }
        if let Some((rows, generation, seq)) = last {
            spool.generation = generation;
            spool.next_seq = seq.saturating_add(1);
            spool.rows = rows;
        }
        spool.bytes = complete_len;
        Ok(spool)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether nothing waits: no row in the file, none counted past the cap.
    pub fn is_empty(&self) -> bool {
        self.rows == 0 && self.untold.total() == 0
    }

    /// How many rows wait in the file.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Sets the size past which rows are counted instead of written.
    #[cfg(test)]
    pub(crate) fn set_cap(&mut self, bytes: u64) {
        self.cap = bytes;
    }

    /// Makes the next write stop after `bytes` and fail, as on a full disk.
    #[cfg(test)]
    pub(crate) fn fail_next_write_after(&mut self, bytes: usize) {
        self.fail_next_write_after = Some(bytes);
    }

    /// Numbers for `n` rows the writer appends to the chain directly: the generation and the
    /// first number. The append records the last one as the mark, in its transaction; if it
    /// fails, the rows are spooled under these numbers ([`Self::append_reserved`]).
    pub(crate) fn reserve(&mut self, n: usize) -> (String, u64) {
        let first = self.next_seq;
        self.next_seq = self
            .next_seq
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        (self.generation.clone(), first)
    }

    /// Appends `rows` and syncs once; when this returns `Ok` they survive a crash (past the
    /// cap: their count does, in a summary row written at most every [`SUMMARY_EVERY_MS`] and
    /// before the next flush).
    ///
    /// # Errors
    /// The write or the sync failed: nothing of it stays in the file.
    pub fn append(&mut self, rows: &[(u64, &AuditEvent)]) -> Result<(), StoreError> {
        let (_, first) = self.reserve(rows.len());
        let numbered: Vec<(u64, u64, &AuditEvent)> = (first..)
            .zip(rows)
            .map(|(seq, (ts_ms, event))| (seq, *ts_ms, *event))
            .collect();
        self.append_reserved(&numbered)
    }

    /// [`Self::append`] for rows whose numbers were reserved ([`Self::reserve`]) in the
    /// current generation: `(seq, ts_ms, event)`, in increasing `seq`.
    ///
    /// # Errors
    /// As [`Self::append`].
    pub(crate) fn append_reserved(
        &mut self,
        rows: &[(u64, u64, &AuditEvent)],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for (seq, ts_ms, event) in rows {
            self.encode(&mut text, *seq, *ts_ms, event)?;
        }
        if self.bytes.saturating_add(text.len() as u64) > self.cap {
            if self.untold.total() == 0 {
                tracing::error!(
                    spool = %self.path.display(),
                    cap = self.cap,
                    "the audit spool is full: further rows are counted, not written one by \
                     one, until the database is back"
                );
            }
            self.untold.count(rows);
            let now = crate::time::now_ms();
            if now >= self.untold.last_summary_ms.saturating_add(SUMMARY_EVERY_MS) {
                self.write_summary(now)?;
            }
            return Ok(());
        }
        self.write_lines(&text, rows.len())
    }

    /// Writes the summary row of the rows counted past the cap, if any.
    fn write_summary(&mut self, now_ms: u64) -> Result<(), StoreError> {
        let Some(summary) = self.untold.take_summary(self.cap, now_ms) else {
            return Ok(());
        };
        let (_, seq) = self.reserve(1);
        let mut text = Vec::new();
        self.encode(&mut text, seq, now_ms, &summary)?;
        self.write_lines(&text, 1)
    }

    fn encode(
        &self,
        text: &mut Vec<u8>,
        seq: u64,
        ts_ms: u64,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let line = SpooledRow {
            generation: self.generation.clone(),
            seq,
            ts_ms,
            event: event.clone(),
        };
        serde_json::to_writer(&mut *text, &line).map_err(|e| io(&self.path, e))?;
        text.push(b'\n');
        Ok(())
    }

    /// Appends complete lines and syncs; on failure the file is cut back to where it was, so
    /// a partial line never stays in front of the next one.
    fn write_lines(&mut self, text: &[u8], rows: usize) -> Result<(), StoreError> {
        if let Err(e) = self.write_synced(text) {
            if let Err(cut) = self
                .file
                .set_len(self.bytes)
                .and_then(|()| self.file.sync_all())
            {
                tracing::error!(
                    spool = %self.path.display(),
                    error = %cut,
                    "a failed audit spool write could not be cut off"
                );
            }
            return Err(io(&self.path, e));
        }
        self.bytes = self.bytes.saturating_add(text.len() as u64);
        self.rows += rows;
        Ok(())
    }

    fn write_synced(&mut self, text: &[u8]) -> std::io::Result<()> {
        #[cfg(test)]
        if let Some(n) = self.fail_next_write_after.take() {
            self.file.write_all(text.get(..n).unwrap_or(text))?;
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device (test)",
            ));
        }
        self.file.write_all(text)?;
        self.file.sync_data()
    }

    /// Calls `each` with every row in the file, in order, reading it a line at a time; returns
    /// the length of its complete lines. A line that does not parse is skipped with an error
    /// in the log; `each` failing stops the reading.
    fn each_row(
        &self,
        mut each: impl FnMut(SpooledRow) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let mut reader = BufReader::new(File::open(&self.path).map_err(|e| io(&self.path, e))?);
        let mut complete = 0u64;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| io(&self.path, e))?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            complete += n as u64;
            match serde_json::from_slice::<SpooledRow>(&line) {
                Ok(row) => each(row)?,
                Err(e) => tracing::error!(
                    spool = %self.path.display(),
                    error = %e,
                    line = %String::from_utf8_lossy(&line).chars().take(200).collect::<String>(),
                    "an audit spool line does not parse; skipped"
                ),
            }
        }
        Ok(complete)
    }

    /// Appends every spooled row not yet in the chain to `sink`, in order (chunks of
    /// [`FLUSH_CHUNK`], each one transaction with its mark, read from the file one at a time),
    /// then empties the file.
    ///
    /// # Errors
    /// The database failed (what was appended stays recorded by its mark; the rest waits in
    /// the file), or the file could not be read or emptied.
    pub(crate) fn flush(&mut self, sink: &impl SpoolSink) -> Result<usize, StoreError> {
        if self.is_empty() {
            return Ok(0);
        }
        // The database first: while it is away, the file is not read again for nothing.
        let mut marks: Vec<(String, Option<u64>)> =
            vec![(self.generation.clone(), sink.spool_mark(&self.generation)?)];
        // What was counted past the cap goes into the chain too, after the rows before it.
        self.write_summary(crate::time::now_ms())?;
        let mut appended = 0;
        let mut pending: Vec<SpooledRow> = Vec::new();
        self.each_row(|row| {
            let mark = match marks.iter().find(|(g, _)| *g == row.generation) {
                Some((_, m)) => *m,
                None => {
                    let m = sink.spool_mark(&row.generation)?;
                    marks.push((row.generation.clone(), m));
                    m
                }
            };
            if mark.is_some_and(|m| row.seq <= m) {
                return Ok(());
            }
            // A chunk is one generation (its mark names one).
            if pending
                .first()
                .is_some_and(|p| p.generation != row.generation)
                || pending.len() >= FLUSH_CHUNK
            {
                appended += append_chunk(sink, &pending)?;
                pending.clear();
            }
            pending.push(row);
            Ok(())
        })?;
        appended += append_chunk(sink, &pending)?;
        self.clear()?;
        Ok(appended)
    }

    /// Moves the file aside (`audit-spool.jsonl.refused-<ms>`) and starts an empty one: the
    /// database refused a spooled row, and the rows after it must not wait forever.
    ///
    /// # Errors
    /// The file could not be moved or created.
    pub(crate) fn set_aside(&mut self) -> Result<PathBuf, StoreError> {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".refused-{}", crate::time::now_ms()));
        let kept = PathBuf::from(name);
        std::fs::rename(&self.path, &kept).map_err(|e| io(&self.path, e))?;
        let cap = self.cap;
        *self = Self::open(&self.path)?;
        self.cap = cap;
        Ok(kept)
    }

    /// Empties the file (after its rows are in the chain) and starts a new generation.
    fn clear(&mut self) -> Result<(), StoreError> {
        self.file.set_len(0).map_err(|e| io(&self.path, e))?;
        self.file.sync_all().map_err(|e| io(&self.path, e))?;
        self.rows = 0;
        self.bytes = 0;
        self.generation = new_generation();
        self.next_seq = 1;
        Ok(())
    }
}

/// Counts a row read at open and keeps its place: `(rows, generation, seq)` of the last one.
fn spool_rows_seen(last: &mut Option<(usize, String, u64)>, row: SpooledRow) {
    let rows = last.as_ref().map_or(0, |(n, _, _)| *n) + 1;
    *last = Some((rows, row.generation, row.seq));
}

fn append_chunk(sink: &impl SpoolSink, chunk: &[SpooledRow]) -> Result<usize, StoreError> {
    let Some(last) = chunk.last() else {
        return Ok(0);
    };
    let rows: Vec<(u64, &AuditEvent)> = chunk.iter().map(|r| (r.ts_ms, &r.event)).collect();
    sink.append_spooled(&rows, &last.generation, last.seq)?;
    Ok(chunk.len())
}

#[cfg(test)]
mod tests;
