//! The signal engine: envelope lines in, fires out. One engine for live
//! runs and backtests; only the source of the lines differs.
//!
//! For each line of a chunk (envelope lines, docs/bus.md; one or many per
//! chunk, with or without the archiver's `seq`):
//!
//! 1. the subject names the venue and kind; lines of kinds no builder reads
//!    are skipped before their message is parsed (a `status` gap line is
//!    noted for the report);
//! 2. the venue's parser normalizes the message into typed records;
//! 3. each record a builder reads gets a number `n` = `{rx}.{i}`, `i` its
//!    index among the records read from that connection's lines received
//!    at `rx`, in stream order. With the connection id it names the record
//!    in the fire's message id (`{signal}:{venue}:{conn}:{n}`), the same
//!    whether the line came from the bus or from the archive, and whatever
//!    the instrument or venue filters;
//! 4. every builder of the record's instrument moves its window to the
//!    record's `rx`, the builders that read it add it, and the signal is
//!    evaluated on the resulting state;
//! 5. with [`Trigger::Edge`] the signal fires when the evaluation turns
//!    true (a rising edge per instrument) and re-arms when it turns false;
//!    with [`Trigger::Record`] it fires on every record evaluated true.
//!
//! State is per instrument and carried from one call to the next, so the
//! fires do not depend on how the lines are cut into chunks.
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

use memchr::memchr;
use memchr::memmem::Finder;
use rustc_hash::FxHashMap;

use super::builders::{Effect, Spec, State};
use super::ms_to_ns;
use crate::archive::{parse_envelope, split_subject, Seq};
use crate::json;
use crate::model::Venue;
use crate::normalize::Normalizer;
use crate::records::Record;
use crate::subject;

/// When a signal fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// On the rising edge of the evaluation, per instrument; re-armed when
    /// it falls back.
    Edge,
    /// On every record whose evaluation is true (event signals: each
    /// lifecycle event is its own fire).
    Record,
}

/// What an engine runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The signal id (a subject token: `[a-z0-9_-]`).
    pub signal: String,
    /// Named builders, in declaration order.
    pub builders: Vec<(String, Spec)>,
    pub trigger: Trigger,
    /// Only these venues (`None`: all).
    pub venues: Option<Vec<Venue>>,
    /// Only these instruments, as raw venue ids or subject tokens (a
    /// Polymarket condition id selects its tokens); `None`: all.
    pub instruments: Option<HashSet<Vec<u8>>>,
}

/// The state a signal is evaluated on: one record's instrument after the
/// record was added.
#[derive(Debug)]
pub struct Ctx<'e> {
    pub venue: Venue,
    pub instrument: &'e str,
    pub rx: u64,
    /// Exchange time of the record in ns since the epoch (the records
    /// carry ms), when it has one.
    pub ts: Option<i64>,
    /// `trade`, `quote` or `lifecycle`.
    pub record: &'static str,
    pub builders: &'e [(String, Spec)],
    pub states: &'e [State],
}

/// Decides whether a record's state fires, and what a fire says.
pub trait Evaluator {
    type Payload;
    /// Whether the signal holds; an error is counted against the
    /// instrument and changes nothing.
    fn evaluate(&mut self, ctx: &Ctx<'_>) -> Result<bool, String>;
    fn payload(&mut self, ctx: &Ctx<'_>) -> Result<Self::Payload, String>;
}

/// One fire (docs/signals.md, "Fires"): published on `subject` with `msg_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fire<P> {
    pub msg_id: String,
    pub subject: String,
    pub venue: Venue,
    pub instrument: Arc<str>,
    /// Exchange time of the record that fired (ns), when it has one.
    pub ts: Option<i64>,
    pub rx: u64,
    /// The JetStream sequence of the line's message (`[M, i]` for line `i`
    /// of a multi-line message), when the line carries one.
    pub source_seq: Option<Seq>,
    pub payload: P,
}

/// What a call does besides updating the builders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Evaluate the signal and track its edges.
    pub evaluate: bool,
    /// Emit fires (a warm-up evaluates without firing, or does neither).
    pub fire: bool,
}

impl Mode {
    pub const RUN: Mode = Mode {
        evaluate: true,
        fire: true,
    };
}

/// A gap status line seen in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub rx: u64,
    pub venue: Option<Venue>,
    pub subject: String,
    /// The status message (cut at 512 bytes).
    pub detail: String,
}

/// Gap lines kept for the report (all are counted).
const MAX_GAPS: usize = 10_000;
/// Receive times remembered per connection for numbering records.
const RECENT_RX: usize = 64;
/// Connections remembered for numbering (the oldest is forgotten beyond).
const MAX_CONNS: usize = 65_536;

/// Running totals of an engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Lines given to the engine.
    pub lines: u64,
    /// Lines that are not envelope lines.
    pub bad_lines: u64,
    /// Lines of the kinds the builders read (and of the chosen venues).
    pub lines_read: u64,
    /// Trade lines that are a venue's replay of recent trades on
    /// subscribing (Kraken `snapshot`, Kraken Futures `trade_snapshot`):
    /// skipped, as their trades were counted when they happened.
    pub snapshot_lines: u64,
    /// Records the builders read (numbered).
    pub records: u64,
    /// Records of instruments outside the filter.
    pub filtered: u64,
    /// Trades counted without dollars (not USD-quoted).
    pub not_usd: u64,
    /// Records not counted: price or size not a decimal, quotes without
    /// both sides.
    pub unreadable: u64,
    pub evaluations: u64,
    pub fires: u64,
    /// Evaluations or payloads that failed.
    pub errors: u64,
    /// Gap status lines seen.
    pub gaps: u64,
}

/// Per-instrument state.
#[derive(Debug)]
pub struct Instrument {
    pub venue: Venue,
    pub name: Arc<str>,
    pub token: String,
    included: bool,
    /// Whether `included` was decided on a line's subject (an instrument
    /// made by [`Engine::set_high`] has none yet: a Polymarket token is
    /// chosen by the condition id its subjects carry).
    decided: bool,
    states: Vec<State>,
    /// The last evaluation (edge trigger).
    pub high: bool,
    pub records: u64,
    pub fires: u64,
    pub errors: u64,
}

/// Numbers the records of one connection by receive time.
#[derive(Debug, Default)]
struct ConnCount {
    recent: VecDeque<(u64, u64)>,
    last_used: u64,
}

impl ConnCount {
    /// Number `k` records received at `rx`: the first one's index.
    fn take(&mut self, rx: u64, k: u64) -> u64 {
        // lines of a connection come in receive order almost always: the
        // newest time is the one asked for, or a new one after it
        // `recent` is kept sorted by time, so the back is the newest
        let at = match self.recent.back() {
            Some(e) if e.0 < rx => self.recent.len(),
            _ => self.recent.partition_point(|e| e.0 < rx),
        };
        if let Some(e) = self.recent.get_mut(at).filter(|e| e.0 == rx) {
            e.1 += k;
            return e.1 - k;
        }
        self.recent.insert(at, (rx, k));
        if self.recent.len() > RECENT_RX {
            self.recent.pop_front();
        }
        0
    }
}

fn venue_index(v: Venue) -> usize {
    match v {
        Venue::Kalshi => 0,
        Venue::Kraken => 1,
        Venue::KrakenFutures => 2,
        Venue::Polymarket => 3,
    }
}

/// The venue named by the second token of a subject.
fn venue_of(subj: &[u8]) -> Option<Venue> {
    let start = memchr(b'.', subj)? + 1;
    let rest = &subj[start..];
    let tok = &rest[..memchr(b'.', rest).unwrap_or(rest.len())];
    Some(match tok {
        b"kalshi" => Venue::Kalshi,
        b"kraken" => Venue::Kraken,
        b"kraken-futures" => Venue::KrakenFutures,
        b"polymarket" => Venue::Polymarket,
        _ => return None,
    })
}

/// A venue's replay of recent trades on subscribing.
fn is_trade_snapshot(venue: Venue, msg: &[u8]) -> bool {
    static KRAKEN: OnceLock<Finder<'static>> = OnceLock::new();
    static FUTURES: OnceLock<Finder<'static>> = OnceLock::new();
    let head = &msg[..msg.len().min(160)];
    match venue {
        Venue::Kraken => KRAKEN
            .get_or_init(|| Finder::new(br#""type":"snapshot""#))
            .find(head)
            .is_some(),
        Venue::KrakenFutures => FUTURES
            .get_or_init(|| Finder::new(br#""feed":"trade_snapshot""#))
            .find(head)
            .is_some(),
        _ => false,
    }
}

/// The engine of one signal.
pub struct Engine {
    cfg: Config,
    kinds: Vec<&'static [u8]>,
    reads: [bool; 3],
    normalizers: [Option<Normalizer>; 4],
    index: [FxHashMap<Box<[u8]>, u32>; 4],
    instruments: Vec<Instrument>,
    conns: FxHashMap<Box<[u8]>, ConnCount>,
    conn_clock: u64,
    counters: Counters,
    transitions: Vec<(u32, bool)>,
    errors: Vec<(u32, String)>,
    gaps: Vec<Gap>,
    last_rx: Option<u64>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("signal", &self.cfg.signal)
            .field("instruments", &self.instruments.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// What a rule sees of instrument `idx` at one record.
    fn ctx(&self, idx: u32, rx: u64, ts: Option<i64>, record: &'static str) -> Ctx<'_> {
        let inst = &self.instruments[idx as usize];
        Ctx {
            venue: inst.venue,
            instrument: &inst.name,
            rx,
            ts,
            record,
            builders: &self.cfg.builders,
            states: &inst.states,
        }
    }

    pub fn new(cfg: Config) -> Engine {
        let mut kinds: Vec<&'static [u8]> = Vec::new();
        let mut reads = [false; 3];
        for (_, spec) in &cfg.builders {
            reads[spec.reads() as usize] = true;
            for k in spec.subject_kinds() {
                if !kinds.contains(&k.as_bytes()) {
                    kinds.push(k.as_bytes());
                }
            }
        }
        Engine {
            cfg,
            kinds,
            reads,
            normalizers: [None, None, None, None],
            index: Default::default(),
            instruments: Vec::new(),
            conns: FxHashMap::default(),
            conn_clock: 0,
            counters: Counters::default(),
            transitions: Vec::new(),
            errors: Vec::new(),
            gaps: Vec::new(),
            last_rx: None,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Subject kinds the builders read (`trade`, `ticker`, …).
    pub fn subject_kinds(&self) -> Vec<&'static str> {
        self.kinds
            .iter()
            .map(|k| std::str::from_utf8(k).unwrap_or_default())
            .collect()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    /// The largest `rx` seen so far.
    pub fn last_rx(&self) -> Option<u64> {
        self.last_rx
    }

    /// Gap lines seen (the first 10 000).
    pub fn gaps(&self) -> &[Gap] {
        &self.gaps
    }

    /// Edge changes since the last call: `(instrument, high)`.
    pub fn take_transitions(&mut self) -> Vec<(&Instrument, bool)> {
        let t = std::mem::take(&mut self.transitions);
        t.into_iter()
            .map(|(i, h)| (&self.instruments[i as usize], h))
            .collect()
    }

    /// Errors since the last call: `(instrument, message)`.
    pub fn take_errors(&mut self) -> Vec<(&Instrument, String)> {
        let e = std::mem::take(&mut self.errors);
        e.into_iter()
            .map(|(i, m)| (&self.instruments[i as usize], m))
            .collect()
    }

    /// Window entries held over every instrument (memory figures, tests).
    pub fn entries(&self) -> usize {
        self.instruments
            .iter()
            .flat_map(|i| i.states.iter())
            .map(State::entries)
            .sum()
    }

    /// Set an instrument's edge state (restoring it after a restart).
    /// Whether the instrument passes the filter is decided on its first
    /// line, whose subject may name it otherwise.
    pub fn set_high(&mut self, venue: Venue, instrument: &str, high: bool) {
        let i = self.instrument_index(venue, instrument.as_bytes(), None);
        self.instruments[i as usize].high = high;
    }

    fn included(&self, name: &[u8], token: &str, subject_inst: &[u8]) -> bool {
        self.cfg.instruments.as_ref().map_or(true, |f| {
            f.contains(name) || f.contains(token.as_bytes()) || f.contains(subject_inst)
        })
    }

    /// The index of an instrument, made on first sight; `subject_inst` is
    /// the instrument part of the line's subject (`None`: no line yet).
    fn instrument_index(&mut self, venue: Venue, name: &[u8], subject_inst: Option<&[u8]>) -> u32 {
        if let Some(&i) = self.index[venue_index(venue)].get(name) {
            if let Some(s) = subject_inst {
                if !self.instruments[i as usize].decided {
                    self.decide(i, name, s);
                }
            }
            return i;
        }
        let name_str: Arc<str> = Arc::from(String::from_utf8_lossy(name).as_ref());
        let token = subject::token(&name_str);
        let included = self.included(name, &token, subject_inst.unwrap_or_default());
        let i = u32::try_from(self.instruments.len()).expect("fewer than 2^32 instruments");
        self.instruments.push(Instrument {
            venue,
            name: name_str,
            token,
            included,
            decided: subject_inst.is_some(),
            states: self
                .cfg
                .builders
                .iter()
                .map(|(_, s)| s.new_state())
                .collect(),
            high: false,
            records: 0,
            fires: 0,
            errors: 0,
        });
        self.index[venue_index(venue)].insert(name.into(), i);
        i
    }

    #[cold]
    fn decide(&mut self, i: u32, name: &[u8], subject_inst: &[u8]) {
        let included = self.included(name, &self.instruments[i as usize].token, subject_inst);
        let inst = &mut self.instruments[i as usize];
        inst.included = included;
        inst.decided = true;
    }

    fn conn(&mut self, conn: &[u8]) -> &mut ConnCount {
        self.conn_clock += 1;
        if !self.conns.contains_key(conn) {
            if self.conns.len() >= MAX_CONNS {
                // forget the connection used least recently
                if let Some(k) = self
                    .conns
                    .iter()
                    .min_by_key(|(_, c)| c.last_used)
                    .map(|(k, _)| k.clone())
                {
                    self.conns.remove(&k);
                }
            }
            self.conns.insert(conn.into(), ConnCount::default());
        }
        let c = self.conns.get_mut(conn).expect("inserted above");
        c.last_used = self.conn_clock;
        c
    }

    /// Process a chunk of complete `\n`-separated envelope lines, appending
    /// fires to `out`.
    pub fn process<E: Evaluator>(
        &mut self,
        chunk: &[u8],
        mode: Mode,
        eval: &mut E,
        out: &mut Vec<Fire<E::Payload>>,
    ) {
        let mut records: Vec<Record<'_>> = Vec::new();
        let mut start = 0;
        while start < chunk.len() {
            let end = memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |p| start + p);
            let line = &chunk[start..end];
            start = end + 1;
            if line.is_empty() {
                continue;
            }
            self.line(line, mode, eval, out, &mut records);
        }
    }

    fn line<'a, E: Evaluator>(
        &mut self,
        line: &'a [u8],
        mode: Mode,
        eval: &mut E,
        out: &mut Vec<Fire<E::Payload>>,
        records: &mut Vec<Record<'a>>,
    ) {
        self.counters.lines += 1;
        let Some(env) = parse_envelope(line) else {
            self.counters.bad_lines += 1;
            return;
        };
        self.last_rx = Some(self.last_rx.map_or(env.rx, |r| r.max(env.rx)));
        let Some((kind, subject_inst)) = split_subject(env.subj) else {
            return;
        };
        if kind == b"status" {
            if env.is_gap() {
                self.gap(env.rx, env.subj, env.msg);
            }
            return;
        }
        if !self.kinds.contains(&kind) {
            return;
        }
        let Some(venue) = venue_of(env.subj) else {
            return;
        };
        if self
            .cfg
            .venues
            .as_ref()
            .is_some_and(|v| !v.contains(&venue))
        {
            return;
        }
        self.counters.lines_read += 1;
        if kind == b"trade" && is_trade_snapshot(venue, env.msg) {
            self.counters.snapshot_lines += 1;
            return;
        }
        records.clear();
        self.normalizers[venue_index(venue)]
            .get_or_insert_with(|| Normalizer::new(venue))
            .records(env.msg, records);
        let reads = self.reads;
        records.retain(|rec| match rec {
            Record::Trade(t) => reads[0] && !t.instrument.is_null(),
            Record::Quote(q) => reads[1] && !q.instrument.is_null(),
            Record::Lifecycle(l) => reads[2] && !l.instrument.is_null(),
            _ => false,
        });
        if records.is_empty() {
            return;
        }
        // the line's records are numbered together: one lookup of the connection
        let count = records.len() as u64;
        let first = self.conn(env.conn).take(env.rx, count);
        self.counters.records += count;
        for (n, rec) in (first..).zip(records.drain(..)) {
            let (name, ts, what) = match &rec {
                Record::Trade(t) => (t.instrument, t.ts, "trade"),
                Record::Quote(q) => (q.instrument, q.ts, "quote"),
                Record::Lifecycle(l) => (l.instrument, l.ts, "lifecycle"),
                _ => continue,
            };
            let ts = ts.map(ms_to_ns);
            let Some(raw) = name.text() else { continue };
            let unescaped;
            let name: &[u8] = if memchr(b'\\', raw).is_some() {
                unescaped = json::unescape(raw).unwrap_or_default();
                unescaped.as_bytes()
            } else {
                raw
            };
            let idx = self.instrument_index(venue, name, Some(subject_inst));
            let inst = &mut self.instruments[idx as usize];
            if !inst.included {
                self.counters.filtered += 1;
                continue;
            }
            inst.records += 1;
            let mut effect = Effect::Ignored;
            for st in &mut inst.states {
                st.expire(env.rx);
                let e = match &rec {
                    Record::Trade(t) => st.trade(t, env.rx),
                    Record::Quote(q) => st.quote(q, env.rx),
                    Record::Lifecycle(l) => st.lifecycle(l, env.rx),
                    _ => Effect::Ignored,
                };
                if e != Effect::Ignored {
                    effect = e;
                }
            }
            match effect {
                Effect::NotUsd => self.counters.not_usd += 1,
                Effect::Unreadable => self.counters.unreadable += 1,
                _ => {}
            }
            if !mode.evaluate || effect == Effect::Unreadable {
                continue;
            }
            self.evaluate(idx, what, ts, &env, n, mode, eval, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate<E: Evaluator>(
        &mut self,
        idx: u32,
        what: &'static str,
        ts: Option<i64>,
        env: &crate::archive::Envelope<'_>,
        n: u64,
        mode: Mode,
        eval: &mut E,
        out: &mut Vec<Fire<E::Payload>>,
    ) {
        self.counters.evaluations += 1;
        let ctx = self.ctx(idx, env.rx, ts, what);
        let v = match eval.evaluate(&ctx) {
            Ok(v) => v,
            Err(e) => {
                self.fail(idx, e);
                return;
            }
        };
        let fire = match self.cfg.trigger {
            Trigger::Record => v,
            Trigger::Edge => {
                let was = self.instruments[idx as usize].high;
                if v != was {
                    self.instruments[idx as usize].high = v;
                    self.transitions.push((idx, v));
                }
                v && !was
            }
        };
        if !fire || !mode.fire {
            return;
        }
        let inst = &self.instruments[idx as usize];
        let ctx = self.ctx(idx, env.rx, ts, what);
        let payload = match eval.payload(&ctx) {
            Ok(p) => p,
            Err(e) => {
                self.fail(idx, e);
                return;
            }
        };
        let venue = inst.venue.as_str();
        let conn = String::from_utf8_lossy(env.conn);
        out.push(Fire {
            msg_id: format!("{}:{venue}:{conn}:{}.{n}", self.cfg.signal, env.rx),
            subject: format!("signals.{}.{}", self.cfg.signal, inst.token),
            venue: inst.venue,
            instrument: inst.name.clone(),
            ts,
            rx: env.rx,
            source_seq: env.seq,
            payload,
        });
        self.counters.fires += 1;
        self.instruments[idx as usize].fires += 1;
    }

    #[cold]
    fn fail(&mut self, idx: u32, message: String) {
        self.counters.errors += 1;
        let inst = &mut self.instruments[idx as usize];
        inst.errors += 1;
        if self.errors.len() < 1000 {
            self.errors.push((idx, message));
        }
    }

    #[cold]
    fn gap(&mut self, rx: u64, subj: &[u8], msg: &[u8]) {
        self.counters.gaps += 1;
        if self.gaps.len() < MAX_GAPS {
            let cut = &msg[..msg.len().min(512)];
            self.gaps.push(Gap {
                rx,
                venue: venue_of(subj),
                subject: String::from_utf8_lossy(subj).into_owned(),
                detail: String::from_utf8_lossy(cut).into_owned(),
            });
        }
    }
}
