//! Archive lines → normalized records → Arrow record batches, one kind at
//! a time, in `rx` order, with the figures a reconciliation needs.
//!
//! [`ColumnReader`] reads the envelope lines of one venue's files through
//! the archive's merging, damage-skipping reader ([`MergeReader`]),
//! normalizes each venue message with the venue's parser, and appends the
//! records to one [`Table`] per kind. ssmd's own status lines (`gap`,
//! `resync`, `stall`, `disconnect`, `malformed`, …) go to the `status`
//! table with `origin = "ssmd"`, so the holes are visible next to the data.
//! A table is handed out as a batch once it holds `batch_rows` rows (or
//! about 256 MiB), so memory stays bounded whatever the day's size.
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::PathBuf;

use super::ffi::Data;
use super::tables::{Kind, Provenance, SsmdStatus, Table};
use crate::archive::{parse_envelope, split_subject};
use crate::archive::{MergeReader, ReadFilter, ReadWarning, Result};
use crate::json;
use crate::model::Venue;
use crate::normalize::Normalizer;
use crate::records::{Record, Text};
use crate::subject;

/// Cut a batch at about this many bytes even before `batch_rows`.
const BATCH_BYTES: usize = 256 << 20;

/// What one kind's rows were, in row order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindFigures {
    pub rows: u64,
    /// First and last `rx` (ns).
    pub rx: Option<(u64, u64)>,
    /// First and last venue sequence number (rows that have one).
    pub seq: Option<(u64, u64)>,
    /// Smallest and largest JetStream sequence (rows that have one).
    pub stream_seq: Option<(u64, u64)>,
}

impl KindFigures {
    fn add(&mut self, rx: u64, seq: Option<u64>, stream_seq: Option<u64>) {
        self.rows += 1;
        self.rx = Some(self.rx.map_or((rx, rx), |(f, _)| (f, rx)));
        if let Some(s) = seq {
            self.seq = Some(self.seq.map_or((s, s), |(f, _)| (f, s)));
        }
        if let Some(s) = stream_seq {
            self.stream_seq = Some(
                self.stream_seq
                    .map_or((s, s), |(lo, hi)| (lo.min(s), hi.max(s))),
            );
        }
    }
}

/// What reading gave, for the footer and `--verify`.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Envelope lines read, per subject kind (`trade`, `book`, `status`, …).
    pub lines: BTreeMap<String, u64>,
    /// Lines that gave no row (control-like or unknown types), per subject kind.
    pub lines_without_rows: BTreeMap<String, u64>,
    /// Lines skipped because their `rx` is beyond the year 2262 (no Arrow timestamp).
    pub rx_out_of_range: u64,
    pub kinds: BTreeMap<Kind, KindFigures>,
}

/// Which rows to build.
#[derive(Debug, Clone, Default)]
pub struct Select {
    /// Only these kinds (all when `None`).
    pub kinds: Option<HashSet<Kind>>,
    /// Only rows of these instruments: the venue's id or its subject token.
    pub instruments: Option<HashSet<String>>,
    /// `from <= rx < to`.
    pub rx_from: Option<u64>,
    pub rx_to: Option<u64>,
    /// Build the float64 view of each decimal too ([`Kind::schema`]).
    pub views: bool,
}

/// Reads one venue's archive files into record batches per kind.
pub struct ColumnReader {
    venue: Venue,
    normalizer: Normalizer,
    reader: MergeReader,
    tables: Vec<Table>,
    wanted: [bool; 6],
    instruments: Option<HashSet<String>>,
    batch_rows: usize,
    ready: VecDeque<(Kind, Data)>,
    chunk: Vec<u8>,
    /// Lines per subject kind not yet added to `figures`: `[lines, without rows]`.
    line_kinds: Vec<(Vec<u8>, [u64; 2])>,
    figures: Figures,
    done: bool,
}

impl std::fmt::Debug for ColumnReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnReader")
            .field("venue", &self.venue)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ColumnReader {
    pub fn open(
        files: &[PathBuf],
        venue: Venue,
        select: Select,
        batch_rows: usize,
    ) -> Result<ColumnReader> {
        let filter = ReadFilter::default().rx_range(select.rx_from, select.rx_to);
        let reader = MergeReader::open(files, filter)?;
        let mut wanted = [true; 6];
        if let Some(k) = &select.kinds {
            for kind in Kind::ALL {
                wanted[kind.index()] = k.contains(&kind);
            }
        }
        let instruments = select.instruments.map(|set| {
            set.iter()
                .flat_map(|i| [i.clone(), subject::token(i)])
                .collect()
        });
        Ok(ColumnReader {
            venue,
            normalizer: Normalizer::new(venue),
            reader,
            tables: Kind::ALL
                .into_iter()
                .map(|k| Table::new(k, select.views))
                .collect(),
            wanted,
            instruments,
            batch_rows: batch_rows.max(1),
            ready: VecDeque::new(),
            chunk: Vec::new(),
            line_kinds: Vec::new(),
            figures: Figures::default(),
            done: false,
        })
    }

    /// The next batch `(kind, struct array of its columns)`, `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<(Kind, Data)>> {
        while self.ready.is_empty() && !self.done {
            self.chunk.clear();
            let n = self.reader.read_chunk(&mut self.chunk, 4096, 4 << 20)?;
            if n == 0 {
                self.done = true;
                for t in &mut self.tables {
                    if !t.is_empty() {
                        self.ready.push_back((t.kind(), t.finish()));
                    }
                }
                break;
            }
            let chunk = std::mem::take(&mut self.chunk);
            // one record buffer for the chunk's lines (they all borrow from it)
            let mut records: Vec<Record<'_>> = Vec::new();
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', &chunk).chain([chunk.len()]) {
                let line = &chunk[start..end];
                start = end + 1;
                if !line.is_empty() {
                    self.line(line, &mut records);
                }
            }
            drop(records);
            self.chunk = chunk;
        }
        Ok(self.ready.pop_front())
    }

    /// Warnings of the files read so far (damage skipped, files not read).
    pub fn warnings(&self) -> &[ReadWarning] {
        self.reader.warnings()
    }

    /// The figures so far.
    pub fn figures(&mut self) -> &Figures {
        for (k, [lines, without]) in self.line_kinds.drain(..) {
            let name = String::from_utf8_lossy(&k).into_owned();
            *self.figures.lines.entry(name.clone()).or_default() += lines;
            if without > 0 {
                *self.figures.lines_without_rows.entry(name).or_default() += without;
            }
        }
        &self.figures
    }

    fn line<'c>(&mut self, line: &'c [u8], records: &mut Vec<Record<'c>>) {
        // The reader yields envelope lines only.
        let Some(env) = parse_envelope(line) else {
            return;
        };
        let (kind, inst) = env.kind_instrument().unwrap_or((b"", b""));
        let slot = match self
            .line_kinds
            .iter()
            .position(|(k, _)| k.as_slice() == kind)
        {
            Some(i) => i,
            None => {
                self.line_kinds.push((kind.to_vec(), [0, 0]));
                self.line_kinds.len() - 1
            }
        };
        self.line_kinds[slot].1[0] += 1;
        let Ok(rx) = i64::try_from(env.rx) else {
            self.figures.rx_out_of_range += 1;
            return;
        };
        let mut p = Provenance {
            rx,
            conn: env.conn,
            stream_seq: env.seq.map(|s| s.stream),
            stream_index: env
                .seq
                .and_then(|s| s.index)
                .map(|i| u32::try_from(i).unwrap_or(u32::MAX)),
            record_index: 0,
        };
        let rows = if env.msg.starts_with(br#"{"ssmd":"#) {
            self.ssmd_line(env.msg, inst, &p)
        } else {
            records.clear();
            self.normalizer.records(env.msg, records);
            let mut rows = 0;
            for (i, r) in records.iter().enumerate() {
                p.record_index = u32::try_from(i).unwrap_or(u32::MAX);
                rows += u64::from(self.push(r, &p));
            }
            rows
        };
        if rows == 0 {
            self.line_kinds[slot].1[1] += 1;
        }
    }

    /// An ssmd status line into the status table; returns the rows added.
    fn ssmd_line(&mut self, msg: &[u8], inst: &[u8], p: &Provenance<'_>) -> u64 {
        if !self.wanted[Kind::Status.index()] || !self.instrument_ok(inst) {
            return 0;
        }
        let what = json::parse(msg)
            .ok()
            .and_then(|v| v.get("ssmd"))
            .and_then(|v| v.str_raw());
        let s = SsmdStatus {
            venue: self.venue,
            instrument: inst,
            what,
            detail: msg,
        };
        self.table(Kind::Status).push_ssmd(&s, p);
        self.count(Kind::Status, p, None);
        1
    }

    /// A record into its table; false when it is not selected.
    fn push(&mut self, r: &Record<'_>, p: &Provenance<'_>) -> bool {
        let kind = Kind::of(r);
        if !self.wanted[kind.index()] {
            return false;
        }
        if self.instruments.is_some() {
            let inst = record_instrument(r);
            let name = inst.text().map(|t| json::unescape(t).unwrap_or_default());
            if !name
                .as_deref()
                .is_some_and(|n| self.instrument_ok(n.as_bytes()))
            {
                return false;
            }
        }
        self.table(kind).push(r, p);
        self.count(kind, p, record_seq(r));
        true
    }

    fn instrument_ok(&self, inst: &[u8]) -> bool {
        match &self.instruments {
            None => true,
            Some(set) => std::str::from_utf8(inst).is_ok_and(|s| set.contains(s)),
        }
    }

    fn table(&mut self, kind: Kind) -> &mut Table {
        &mut self.tables[kind.index()]
    }

    fn count(&mut self, kind: Kind, p: &Provenance<'_>, seq: Option<u64>) {
        // rx came from a u64 that fits an i64
        let rx = p.rx.unsigned_abs();
        self.figures
            .kinds
            .entry(kind)
            .or_default()
            .add(rx, seq, p.stream_seq);
        let t = &mut self.tables[kind.index()];
        let n = t.len();
        if n >= self.batch_rows || (n % 1024 == 0 && t.bytes() >= BATCH_BYTES) {
            let data = t.finish();
            self.ready.push_back((kind, data));
        }
    }
}

fn record_instrument<'r, 'a>(r: &'r Record<'a>) -> &'r Text<'a> {
    match r {
        Record::Trade(t) => &t.instrument,
        Record::Quote(q) => &q.instrument,
        Record::BookSnapshot(b) => &b.instrument,
        Record::BookDelta(d) => &d.instrument,
        Record::Lifecycle(l) => &l.instrument,
        Record::Status(s) => &s.instrument,
    }
}

fn record_seq(r: &Record<'_>) -> Option<u64> {
    match r {
        Record::Trade(t) => t.seq,
        Record::BookSnapshot(b) => b.seq,
        Record::BookDelta(d) => d.seq,
        _ => None,
    }
}

/// The subject kind of an envelope line, for callers that count lines.
pub fn line_kind(line: &[u8]) -> Option<&[u8]> {
    parse_envelope(line)
        .and_then(|e| split_subject(e.subj))
        .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ArchiveWriter, WriterConfig};

    fn line(rx: u64, seq: u64, subj: &str, msg: &str) -> String {
        format!(r#"{{"rx":{rx},"seq":{seq},"conn":"c1","subj":"{subj}","msg":{msg}}}"#) + "\n"
    }

    #[test]
    fn lines_become_batches_per_kind_with_figures() {
        let dir = tempfile::tempdir().unwrap();
        let t0: u64 = 1_709_251_200_000_000_000;
        let mut text = String::new();
        for i in 0..10u64 {
            text += &line(
                t0 + i,
                i + 1,
                "prod.kraken.json.trade.BTC_USD",
                &format!(
                    r#"{{"channel":"trade","type":"update","data":[{{"symbol":"BTC/USD","side":"buy","price":6000{i}.5,"qty":0.1,"ord_type":"limit","trade_id":{i},"timestamp":"2024-03-01T00:00:00.000Z"}},{{"symbol":"BTC/USD","side":"sell","price":1,"qty":2,"ord_type":"limit","trade_id":{},"timestamp":"2024-03-01T00:00:00.000Z"}}]}}"#,
                    i + 100
                ),
            );
        }
        text += &line(
            t0 + 20,
            11,
            "prod.kraken.json.status.c1",
            r#"{"ssmd":"gap","reason":"stream","from":3,"to":4}"#,
        );
        text += &line(
            t0 + 21,
            12,
            "prod.kraken.json.heartbeat.x",
            r#"{"channel":"heartbeat"}"#,
        );
        let mut cfg = WriterConfig::new(dir.path(), "kraken", "t");
        cfg.fsync = false;
        let mut w = ArchiveWriter::open(cfg).unwrap();
        w.write(text.as_bytes()).unwrap();
        w.close().unwrap();
        let files =
            crate::archive::list_files(dir.path(), Some("kraken"), None, None, false).unwrap();
        let mut r = ColumnReader::open(&files, Venue::Kraken, Select::default(), 7).unwrap();
        let mut got = Vec::new();
        while let Some((k, d)) = r.next_batch().unwrap() {
            got.push((k, d.len));
        }
        assert_eq!(
            got,
            [
                (Kind::Trade, 7),
                (Kind::Trade, 7),
                (Kind::Trade, 6),
                (Kind::Status, 1)
            ]
        );
        let f = r.figures();
        assert_eq!(f.lines["trade"], 10);
        assert_eq!(f.lines_without_rows["heartbeat"], 1);
        let tr = &f.kinds[&Kind::Trade];
        assert_eq!(tr.rows, 20);
        assert_eq!(tr.stream_seq, Some((1, 10)));
        assert_eq!(tr.rx, Some((t0, t0 + 9)));
        assert!(r.warnings().is_empty());

        let sel = Select {
            kinds: Some([Kind::Status].into_iter().collect()),
            instruments: Some(["c1".to_owned()].into_iter().collect()),
            ..Select::default()
        };
        let mut r = ColumnReader::open(&files, Venue::Kraken, sel, 100).unwrap();
        let (k, d) = r.next_batch().unwrap().unwrap();
        assert_eq!((k, d.len), (Kind::Status, 1));
        assert!(r.next_batch().unwrap().is_none());
    }
}
