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
//! the emptying, the next flush skips every line at or below the recorded number. A torn last
//! line (a crash in the middle of an append) is cut off with a warning when the file is opened.

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
    /// Rows in the file (the spool is empty when zero).
    rows: usize,
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
        };
        let (rows, complete_len) = spool.read()?;
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
        if let Some(last) = rows.last() {
            spool.generation.clone_from(&last.generation);
            spool.next_seq = last.seq.saturating_add(1);
        }
        spool.rows = rows.len();
        Ok(spool)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether no row waits in the file.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// How many rows wait in the file.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Appends `rows` and syncs once; when this returns `Ok` they survive a crash.
    ///
    /// # Errors
    /// The write or the sync failed (the rows may be partly written; a torn line is cut off
    /// at the next open).
    pub fn append(&mut self, rows: &[(u64, &AuditEvent)]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for (ts_ms, event) in rows {
            let line = SpooledRow {
                generation: self.generation.clone(),
                seq: self.next_seq,
                ts_ms: *ts_ms,
                event: (*event).clone(),
            };
            serde_json::to_writer(&mut text, &line).map_err(|e| io(&self.path, e))?;
            text.push(b'\n');
            self.next_seq += 1;
        }
        self.file.write_all(&text).map_err(|e| io(&self.path, e))?;
        self.file.sync_data().map_err(|e| io(&self.path, e))?;
        self.rows += rows.len();
        Ok(())
    }

    /// Every row in the file, in order, and the length of its complete lines. A line that
    /// does not parse is skipped with an error in the log.
    fn read(&self) -> Result<(Vec<SpooledRow>, u64), StoreError> {
        let mut reader = BufReader::new(File::open(&self.path).map_err(|e| io(&self.path, e))?);
        let (mut rows, mut complete) = (Vec::new(), 0u64);
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
                Ok(row) => rows.push(row),
                Err(e) => tracing::error!(
                    spool = %self.path.display(),
                    error = %e,
                    line = %String::from_utf8_lossy(&line).chars().take(200).collect::<String>(),
                    "an audit spool line does not parse; skipped"
                ),
            }
        }
        Ok((rows, complete))
    }

    /// Appends every spooled row not yet in the chain to `sink`, in order (chunks of
    /// [`FLUSH_CHUNK`], each one transaction with its mark), then empties the file.
    ///
    /// # Errors
    /// The database failed (what was appended stays recorded by its mark; the rest waits in
    /// the file), or the file could not be read or emptied.
    pub(crate) fn flush(&mut self, sink: &impl SpoolSink) -> Result<usize, StoreError> {
        if self.is_empty() {
            return Ok(0);
        }
        let (rows, _) = self.read()?;
        let mut appended = 0;
        let mut marks: Vec<(String, Option<u64>)> = Vec::new();
        let mut pending: Vec<&SpooledRow> = Vec::new();
        for row in &rows {
            let mark = match marks.iter().find(|(g, _)| *g == row.generation) {
                Some((_, m)) => *m,
                None => {
                    let m = sink.spool_mark(&row.generation)?;
                    marks.push((row.generation.clone(), m));
                    m
                }
            };
            if mark.is_some_and(|m| row.seq <= m) {
                continue;
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
        }
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
        *self = Self::open(&self.path)?;
        Ok(kept)
    }

    /// Empties the file (after its rows are in the chain) and starts a new generation.
    fn clear(&mut self) -> Result<(), StoreError> {
        self.file.set_len(0).map_err(|e| io(&self.path, e))?;
        self.file.sync_all().map_err(|e| io(&self.path, e))?;
        self.rows = 0;
        self.generation = new_generation();
        self.next_seq = 1;
        Ok(())
    }
}

fn append_chunk(sink: &impl SpoolSink, chunk: &[&SpooledRow]) -> Result<usize, StoreError> {
    let Some(last) = chunk.last() else {
        return Ok(0);
    };
    let rows: Vec<(u64, &AuditEvent)> = chunk.iter().map(|r| (r.ts_ms, &r.event)).collect();
    sink.append_spooled(&rows, &last.generation, last.seq)?;
    Ok(chunk.len())
}

#[cfg(test)]
mod tests;
