//! One processor per venue connection: a batch of raw frames in, envelope
//! lines plus routing facts out. This is the call Python makes once per batch.

use crate::envelope;
use crate::error::Error;
use crate::json::{self, Tape};
use crate::model::{Class, Item, Resync, Venue};
use crate::subject::{category_token, push_token};
use crate::venues::{self, Counters, Out, Setting, VenueParser};

/// Where one enveloped message sits in [`Batch::buf`], with its routing facts.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Byte range of the whole line, `\n` included.
    pub line: (usize, usize),
    /// Byte range of the subject.
    pub subj: (usize, usize),
    /// Byte range of the kind token inside the subject.
    pub kind: (usize, usize),
    pub class: Class,
    pub ts_ms: Option<i64>,
    pub seq: Option<u64>,
    pub dedupe: Option<Box<str>>,
    /// Frame ordinal on the connection and item index inside the frame:
    /// the message id is `{conn}:{frame}.{index}`.
    pub frame: u64,
    pub index: u32,
}

/// Result of one [`Processor::process`] call.
#[derive(Debug, Default)]
pub struct Batch {
    /// Envelope lines of every archived item (data, unknown, status, malformed), in order.
    pub buf: Vec<u8>,
    pub entries: Vec<Entry>,
    /// Control frames (acks, heartbeats, errors, PONG): kind and raw bytes.
    pub controls: Vec<(String, Vec<u8>)>,
    /// Instruments whose book must be re-requested.
    pub resyncs: Vec<Resync>,
    pub frames: usize,
}

impl Batch {
    pub fn line(&self, e: &Entry) -> &[u8] {
        &self.buf[e.line.0..e.line.1]
    }

    pub fn subject(&self, e: &Entry) -> &str {
        std::str::from_utf8(&self.buf[e.subj.0..e.subj.1]).unwrap_or("")
    }

    pub fn kind(&self, e: &Entry) -> &str {
        std::str::from_utf8(&self.buf[e.kind.0..e.kind.1]).unwrap_or("")
    }

    /// Instrument token: the part of the subject after the kind.
    pub fn instrument(&self, e: &Entry) -> &str {
        std::str::from_utf8(&self.buf[(e.kind.1 + 1).min(e.subj.1)..e.subj.1]).unwrap_or("")
    }

    /// The `msg` bytes of an entry's line.
    pub fn msg(&self, e: &Entry) -> &[u8] {
        let start = e.subj.1 + b"\",\"msg\":".len();
        &self.buf[start..e.line.1 - 2]
    }
}

/// Receive timestamps for a batch: one per frame, or one for all.
#[derive(Debug, Clone, Copy)]
pub enum Rx<'r> {
    Each(&'r [i64]),
    All(i64),
}

#[derive(Debug)]
pub struct Processor {
    pub venue: Venue,
    env: String,
    conn: String,
    conn_json: Vec<u8>,
    conn_token: Vec<u8>,
    parser: Box<dyn VenueParser>,
    frame_no: u64,
    pub counters: Counters,
    tape: Tape,
    /// See [`Out::replay`].
    pub replay: bool,
    /// Frames longer than this are kept as `malformed` lines ("frame too
    /// large") without being parsed.
    pub max_frame_bytes: usize,
}

/// Default bound on one frame: far above any real venue frame (the largest
/// seen are Polymarket initial book arrays of a few hundred KiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 << 20;

impl Processor {
    pub fn new(venue: Venue, conn: &str, env: &str) -> Self {
        let mut conn_json = Vec::new();
        json::write_str(&mut conn_json, conn.as_bytes());
        let mut conn_token = Vec::new();
        push_token(conn, &mut conn_token);
        let parser = venues::parser(venue);
        Processor {
            venue,
            env: category_token(env),
            conn: conn.to_owned(),
            conn_json,
            conn_token,
            tape: Tape::with_depth(parser.tape_depth()),
            parser,
            frame_no: 0,
            counters: Counters::default(),
            replay: false,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
        }
    }

    /// Tape entries visited by field lookups since the processor was made:
    /// the routing work, which stays linear in the bytes of the frames.
    pub fn tape_visits(&self) -> u64 {
        self.tape.visits()
    }

    pub fn conn(&self) -> &str {
        &self.conn
    }

    /// Frames seen so far on this connection.
    pub fn frame_no(&self) -> u64 {
        self.frame_no
    }

    /// Hand a setting to the venue's parser (an error if it does not apply).
    pub fn configure(&mut self, setting: Setting<'_>) -> Result<(), Error> {
        self.parser.configure(setting)
    }

    /// Forget what is kept for `instrument` (unsubscribed, or moved to another
    /// connection): its book and sequence state.
    pub fn forget(&mut self, instrument: &str) {
        self.parser.forget(instrument);
    }

    /// A new connection: forget sequence and book state, keep settings,
    /// counters and the frame ordinal (message ids stay unique).
    pub fn reset(&mut self) {
        self.parser.reset();
    }

    /// Process a batch of raw frames.
    pub fn process(&mut self, frames: &[&[u8]], rx: Rx<'_>) -> Batch {
        let total: usize = frames.iter().map(|f| f.len()).sum();
        let mut batch = Batch {
            buf: Vec::with_capacity(total + frames.len() * 160),
            entries: Vec::with_capacity(frames.len()),
            frames: frames.len(),
            ..Batch::default()
        };
        let mut items: Vec<Item<'_>> = Vec::with_capacity(4);
        for (i, frame) in frames.iter().enumerate() {
            let rx_ns = match rx {
                Rx::Each(v) => v
                    .get(i)
                    .copied()
                    .unwrap_or_else(|| v.last().copied().unwrap_or(0)),
                Rx::All(t) => t,
            };
            self.counters.frames += 1;
            self.counters.bytes += frame.len() as u64;
            let frame_no = self.frame_no;
            self.frame_no += 1;
            items.clear();
            if frame.len() > self.max_frame_bytes {
                items.push(Item::malformed("frame too large", frame));
            } else if !json::is_utf8(frame) {
                items.push(Item::malformed("invalid UTF-8", frame));
            } else {
                let mut out = Out {
                    items: &mut items,
                    resyncs: &mut batch.resyncs,
                    counters: &mut self.counters,
                    replay: self.replay,
                };
                self.parser.parse(frame, &mut self.tape, &mut out);
            }
            if items.len() > 1 {
                // an array frame: room for its lines at once, not by doubling
                let body: usize = items.iter().map(|it| it.body.len()).sum();
                batch.buf.reserve(body + items.len() * 160);
                batch.entries.reserve(items.len());
            }
            for (k, it) in items.drain(..).enumerate() {
                let index = u32::try_from(k).unwrap_or(u32::MAX);
                self.emit(&mut batch, it, rx_ns, frame_no, index);
            }
        }
        batch
    }

    fn emit(&mut self, batch: &mut Batch, it: Item<'_>, rx: i64, frame: u64, index: u32) {
        match it.class {
            Class::Control => {
                self.counters.control += 1;
                batch
                    .controls
                    .push((it.kind.into_owned(), it.body.into_owned()));
                return;
            }
            Class::Data => self.counters.data += 1,
            Class::Unknown => self.counters.unknown += 1,
            Class::Status => self.counters.status += 1,
            Class::Malformed => self.counters.malformed += 1,
        }
        let buf = &mut batch.buf;
        let start = buf.len();
        envelope::begin(buf, rx, &self.conn_json);
        let subj_start = buf.len();
        buf.extend_from_slice(self.env.as_bytes());
        buf.push(b'.');
        buf.extend_from_slice(self.venue.as_str().as_bytes());
        let whole_connection = it.instrument.is_empty();
        if let Some(cat) = self.parser.category(&it) {
            buf.push(b'.');
            buf.extend_from_slice(cat.as_bytes());
        }
        buf.extend_from_slice(b".json.");
        let kind_start = buf.len();
        if it.kind.is_empty() {
            buf.extend_from_slice(b"unknown");
        } else {
            push_token(&it.kind, buf);
        }
        let kind_end = buf.len();
        buf.push(b'.');
        if whole_connection {
            buf.extend_from_slice(&self.conn_token);
        } else {
            push_token(&it.instrument, buf);
        }
        let subj_end = buf.len();
        if it.class == Class::Malformed {
            buf.extend_from_slice(b"\",\"msg\":");
            envelope::malformed_body(buf, it.reason, &it.body);
            buf.extend_from_slice(b"}\n");
        } else if !envelope::finish(buf, &it.body) {
            self.counters.line_breaks += 1;
        }
        batch.entries.push(Entry {
            line: (start, buf.len()),
            subj: (subj_start, subj_end),
            kind: (kind_start, kind_end),
            class: it.class,
            ts_ms: it.ts_ms,
            seq: it.seq,
            dedupe: it.dedupe.map(|d| d.into_owned().into_boxed_str()),
            frame,
            index,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(venue: Venue, frames: &[&str]) -> (Processor, Batch) {
        let mut p = Processor::new(venue, "c1", "prod");
        let fs: Vec<&[u8]> = frames.iter().map(|f| f.as_bytes()).collect();
        let b = p.process(&fs, Rx::All(1_700_000_000_000_000_000));
        (p, b)
    }

    #[test]
    fn envelope_keeps_message_bytes() {
        let f = r#"{"type":"ticker","sid":1,"msg":{"market_ticker":"FED-23DEC-T3.00","price_dollars":"0.4800","ts_ms":1669149841000}}"#;
        let (_, b) = run(Venue::Kalshi, &[f]);
        assert_eq!(b.entries.len(), 1);
        let e = &b.entries[0];
        assert_eq!(
            b.subject(e),
            "prod.kalshi.unknown.json.ticker.FED-23DEC-T3_00"
        );
        assert_eq!(b.msg(e), f.as_bytes());
        assert_eq!(e.ts_ms, Some(1_669_149_841_000));
        let line = b.line(e);
        assert!(json::parse(&line[..line.len() - 1]).is_ok());
        assert!(line.starts_with(b"{\"rx\":1700000000000000000,\"conn\":\"c1\",\"subj\":\""));
    }

    #[test]
    fn category_from_series() {
        let mut p = Processor::new(Venue::Kalshi, "c1", "prod");
        p.configure(Setting::Category {
            series: "KXBTCD",
            category: "Crypto",
        })
        .unwrap();
        let f = br#"{"type":"trade","sid":2,"seq":5,"msg":{"trade_id":"t","market_ticker":"KXBTCD-26MAR1213-T69499.99","ts":1}}"#;
        let b = p.process(&[f], Rx::All(1));
        assert_eq!(
            b.subject(&b.entries[0]),
            "prod.kalshi.crypto.json.trade.KXBTCD-26MAR1213-T69499_99"
        );
        assert_eq!(b.entries[0].dedupe.as_deref(), Some("t"));
    }

    #[test]
    fn malformed_and_invalid_utf8_are_kept() {
        let mut p = Processor::new(Venue::Kraken, "c1", "prod");
        let b = p.process(&[b"{\"channel\":", b"\xff\xfe"], Rx::All(1));
        assert_eq!(b.entries.len(), 2);
        assert!(b.entries.iter().all(|e| e.class == Class::Malformed));
        assert_eq!(b.subject(&b.entries[0]), "prod.kraken.json.malformed.c1");
        assert_eq!(p.counters.malformed, 2);
        for e in &b.entries {
            let l = b.line(e);
            assert!(json::parse(&l[..l.len() - 1]).is_ok());
        }
    }

    #[test]
    fn controls_are_reported_not_archived() {
        let (p, b) = run(Venue::Polymarket, &["PONG"]);
        assert!(b.entries.is_empty());
        assert_eq!(b.controls, vec![("pong".to_owned(), b"PONG".to_vec())]);
        assert_eq!(p.counters.control, 1);
    }

    #[test]
    fn kalshi_gap_duplicate_late() {
        let t = |seq: u32| {
            format!(
                r#"{{"type":"trade","sid":1,"seq":{seq},"msg":{{"trade_id":"x{seq}","market_ticker":"A-B","ts":1}}}}"#
            )
        };
        let frames: Vec<String> = [1, 2, 4, 3, 3].iter().map(|&s| t(s)).collect();
        let fr: Vec<&str> = frames.iter().map(String::as_str).collect();
        let (p, b) = run(Venue::Kalshi, &fr);
        let kinds: Vec<&str> = b.entries.iter().map(|e| b.kind(e)).collect();
        // 1, 2, gap+4, late+3, duplicate (3 dropped)
        assert_eq!(
            kinds,
            ["trade", "trade", "status", "trade", "status", "trade", "status"]
        );
        assert_eq!(
            (p.counters.gaps, p.counters.late, p.counters.duplicates),
            (1, 1, 1)
        );
        assert_eq!(b.subject(&b.entries[2]), "prod.kalshi.json.status.c1");
    }

    #[test]
    fn polymarket_array_frames_split_verbatim() {
        let f = r#"[{"event_type":"book","asset_id":"1","market":"0xab","bids":[],"asks":[],"timestamp":"5","hash":"h"} , {"event_type":"last_trade_price","asset_id":"1","market":"0xab","price":"0.5","size":"1","side":"BUY","timestamp":"6"}]"#;
        let (_, b) = run(Venue::Polymarket, &[f]);
        assert_eq!(b.entries.len(), 2);
        assert!(b
            .msg(&b.entries[0])
            .starts_with(b"{\"event_type\":\"book\""));
        assert!(b.msg(&b.entries[0]).ends_with(b"\"hash\":\"h\"}"));
        assert_eq!(b.kind(&b.entries[1]), "trade");
        assert_eq!(b.entries[1].ts_ms, Some(6));
        assert_eq!((b.entries[1].frame, b.entries[1].index), (0, 1));
    }
}
