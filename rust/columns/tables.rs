//! One Arrow schema per normalized kind, and the table that builds its
//! columns from typed records (`crate::records`).
//!
//! Every kind starts with `rx`, `venue`, `instrument`, `ts` and ends with
//! the provenance of the row: `conn`, `stream_seq`, `stream_index` (the
//! archived message: its JetStream sequence, and its line in a multi-line
//! bus message) and `record_index` (the record's place among those its
//! message gave). Prices and sizes are the exact decimal text of the
//! record (a string column), followed, when views are asked for, by a
//! float64 view (`<name>_f64`, the nearest double, null when the text is
//! not a finite number). The Parquet export stores the text only (the views
//! would be half of each file); readers derive the views from it.
use super::build::{struct_data, ListOffsets, Prim, Utf8};
use super::ffi::{Data, Field};
use crate::envelope::push_one_line;
use crate::json;
use crate::model::Venue;
use crate::records::{BookSide, Change, DeltaMode, Level, Raw, Record, Side, Text};

/// Version of the export schemas, in each Parquet file's footer.
pub const SCHEMA_VERSION: &str = "2";

/// The normalized kinds, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Trade,
    Quote,
    BookSnapshot,
    BookDelta,
    Lifecycle,
    Status,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Trade,
        Kind::Quote,
        Kind::BookSnapshot,
        Kind::BookDelta,
        Kind::Lifecycle,
        Kind::Status,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Trade => "trade",
            Kind::Quote => "quote",
            Kind::BookSnapshot => "book_snapshot",
            Kind::BookDelta => "book_delta",
            Kind::Lifecycle => "lifecycle",
            Kind::Status => "status",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn of(r: &Record<'_>) -> Kind {
        match r {
            Record::Trade(_) => Kind::Trade,
            Record::Quote(_) => Kind::Quote,
            Record::BookSnapshot(_) => Kind::BookSnapshot,
            Record::BookDelta(_) => Kind::BookDelta,
            Record::Lifecycle(_) => Kind::Lifecycle,
            Record::Status(_) => Kind::Status,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The record batch schema of this kind: a struct of its columns
    /// (`views`: with the float64 view after each decimal).
    pub fn schema(self, views: bool) -> Field {
        let mut cols = vec![
            Field::new("rx", "tsn:UTC", false),
            Field::new("venue", "u", false),
            Field::new("instrument", "u", true),
            Field::new("ts", "tsm:UTC", true),
        ];
        let seq = || Field::new("seq", "L", true);
        let checksum = || Field::new("checksum", "L", true);
        match self {
            Kind::Trade => {
                cols.push(seq());
                cols.extend(decimal("price", views));
                cols.extend(decimal("size", views));
                cols.push(Field::new("side", "u", true));
                cols.push(Field::new("trade_id", "u", true));
            }
            Kind::Quote => {
                for name in ["bid", "bid_size", "ask", "ask_size", "last"] {
                    cols.extend(decimal(name, views));
                }
            }
            Kind::BookSnapshot => {
                cols.push(seq());
                cols.push(levels("bids", false, views));
                cols.push(levels("asks", false, views));
                cols.push(checksum());
            }
            Kind::BookDelta => {
                cols.push(seq());
                cols.push(Field::new("mode", "u", false));
                cols.push(levels("changes", true, views));
                cols.push(checksum());
            }
            Kind::Lifecycle => {
                cols.push(Field::new("event", "u", true));
                cols.push(Field::new("detail", "u", true));
            }
            Kind::Status => {
                cols.push(Field::new("origin", "u", false));
                cols.push(Field::new("status", "u", true));
                cols.push(Field::new("detail", "u", true));
            }
        }
        cols.extend([
            Field::new("conn", "u", false),
            Field::new("stream_seq", "L", true),
            Field::new("stream_index", "I", true),
            Field::new("record_index", "I", false),
        ]);
        Field::nested("", "+s", false, cols)
    }
}

fn decimal(name: &'static str, views: bool) -> Vec<Field> {
    let mut out = vec![Field::new(name, "u", true)];
    if views {
        out.push(Field::new(f64_name(name), "g", true));
    }
    out
}

fn f64_name(name: &'static str) -> &'static str {
    match name {
        "price" => "price_f64",
        "size" => "size_f64",
        "bid" => "bid_f64",
        "bid_size" => "bid_size_f64",
        "ask" => "ask_f64",
        "ask_size" => "ask_size_f64",
        "last" => "last_f64",
        _ => "value_f64",
    }
}

fn levels(name: &'static str, with_side: bool, views: bool) -> Field {
    let mut item = Vec::new();
    if with_side {
        item.push(Field::new("side", "u", false));
    }
    item.extend(decimal("price", views));
    item.extend(decimal("size", views));
    Field::nested(
        name,
        "+l",
        false,
        vec![Field::nested("item", "+s", false, item)],
    )
}

/// Where a row came from: its envelope line.
#[derive(Debug, Clone, Copy)]
pub struct Provenance<'a> {
    pub rx: i64,
    /// `conn` of the envelope, still JSON-escaped.
    pub conn: &'a [u8],
    pub stream_seq: Option<u64>,
    pub stream_index: Option<u32>,
    pub record_index: u32,
}

/// The characters of a text value, unescaped when it came from a JSON string.
fn text_bytes<'t>(t: &'t Text<'_>, scratch: &'t mut String) -> Option<&'t [u8]> {
    match t {
        Text::Lit(l) => {
            let inner = &l[1..l.len() - 1];
            if memchr::memchr(b'\\', inner).is_none() {
                Some(inner)
            } else {
                *scratch = json::unescape(inner)?;
                Some(scratch.as_bytes())
            }
        }
        _ => t.text(),
    }
}

/// The float64 view of decimal text: the nearest double, or null when the
/// text is not a finite number.
pub fn f64_of(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?;
    let first = *s.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None; // "inf", "NaN"
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A text column.
#[derive(Debug, Default)]
struct TextCol {
    col: Utf8,
    scratch: String,
}

impl TextCol {
    fn push(&mut self, t: &Text<'_>) {
        let v = text_bytes(t, &mut self.scratch);
        self.col.push(v);
    }
}

/// A decimal: its text and (with `views`) its float64 view.
#[derive(Debug, Default)]
struct DecCol {
    text: Utf8,
    f64: Prim<f64>,
    views: bool,
    scratch: String,
}

impl DecCol {
    fn new(views: bool) -> Self {
        DecCol {
            views,
            ..Default::default()
        }
    }

    fn push(&mut self, t: &Text<'_>) {
        let v = text_bytes(t, &mut self.scratch);
        if self.views {
            self.f64.push(v.and_then(f64_of));
        }
        self.text.push(v);
    }

    fn finish(&mut self, out: &mut Vec<Data>) {
        out.push(self.text.finish());
        if self.views {
            out.push(self.f64.finish());
        }
    }

    fn bytes(&self) -> usize {
        self.text.bytes() + self.f64.len() * 8
    }
}

/// A list of levels (`with_side` for book delta changes).
#[derive(Debug, Default)]
struct LevelsCol {
    offsets: ListOffsets,
    side: Utf8,
    price: DecCol,
    size: DecCol,
    items: usize,
    with_side: bool,
}

impl LevelsCol {
    fn new(with_side: bool, views: bool) -> Self {
        LevelsCol {
            with_side,
            price: DecCol::new(views),
            size: DecCol::new(views),
            ..Default::default()
        }
    }

    fn push_levels(&mut self, levels: &[Level<'_>]) {
        for l in levels {
            self.price.push(&l.price);
            self.size.push(&l.size);
        }
        self.items += levels.len();
        self.offsets.push(self.items);
    }

    fn push_changes(&mut self, changes: &[Change<'_>]) {
        for c in changes {
            self.side.push(Some(match c.side {
                BookSide::Bid => b"bid",
                BookSide::Ask => b"ask",
            }));
            self.price.push(&c.price);
            self.size.push(&c.size);
        }
        self.items += changes.len();
        self.offsets.push(self.items);
    }

    fn finish(&mut self) -> Data {
        let mut children = Vec::new();
        if self.with_side {
            children.push(self.side.finish());
        }
        self.price.finish(&mut children);
        self.size.finish(&mut children);
        let items = std::mem::take(&mut self.items);
        self.offsets.finish(struct_data(items, children))
    }

    fn bytes(&self) -> usize {
        self.offsets.bytes() + self.side.bytes() + self.price.bytes() + self.size.bytes()
    }
}

/// The columns every kind shares.
#[derive(Debug, Default)]
struct Common {
    rx: Prim<i64>,
    venue: Utf8,
    instrument: TextCol,
    ts: Prim<i64>,
    conn: Utf8,
    conn_scratch: String,
    stream_seq: Prim<u64>,
    stream_index: Prim<u32>,
    record_index: Prim<u32>,
}

impl Common {
    fn push(&mut self, p: &Provenance<'_>, venue: Venue, instrument: &Text<'_>, ts: Option<i64>) {
        self.rx.push(Some(p.rx));
        self.venue.push(Some(venue.as_str().as_bytes()));
        self.instrument.push(instrument);
        self.ts.push(ts);
        self.provenance(p);
    }

    fn provenance(&mut self, p: &Provenance<'_>) {
        if memchr::memchr(b'\\', p.conn).is_none() {
            self.conn.push(Some(p.conn));
        } else {
            self.conn_scratch = json::unescape(p.conn).unwrap_or_default();
            self.conn.push(Some(self.conn_scratch.as_bytes()));
        }
        self.stream_seq.push(p.stream_seq);
        self.stream_index.push(p.stream_index);
        self.record_index.push(Some(p.record_index));
    }

    fn head(&mut self) -> Vec<Data> {
        vec![
            self.rx.finish(),
            self.venue.finish(),
            self.instrument.col.finish(),
            self.ts.finish(),
        ]
    }

    fn tail(&mut self, out: &mut Vec<Data>) {
        out.push(self.conn.finish());
        out.push(self.stream_seq.finish());
        out.push(self.stream_index.finish());
        out.push(self.record_index.finish());
    }

    fn bytes(&self) -> usize {
        self.rx.len() * 40 + self.venue.bytes() + self.instrument.col.bytes() + self.conn.bytes()
    }
}

/// What an ssmd status line (`{"ssmd":"gap",…}`) becomes in the status table.
#[derive(Debug, Clone, Copy)]
pub struct SsmdStatus<'a> {
    pub venue: Venue,
    /// The subject's instrument token (or connection id).
    pub instrument: &'a [u8],
    /// The value of `ssmd` (`gap`, `resync`, `stall`, `malformed`, …), escaped.
    pub what: Option<&'a [u8]>,
    /// The whole ssmd object.
    pub detail: &'a [u8],
}

/// The columns of one kind under construction.
#[derive(Debug)]
pub struct Table {
    kind: Kind,
    common: Common,
    seq: Prim<u64>,
    checksum: Prim<u64>,
    decs: Vec<DecCol>,
    texts: Vec<TextCol>,
    levels: Vec<LevelsCol>,
}

impl Table {
    /// An empty table of `kind` (`views`: with float64 views, as
    /// [`Kind::schema`]).
    pub fn new(kind: Kind, views: bool) -> Table {
        let side = |with_side| LevelsCol::new(with_side, views);
        let (decs, texts, levels) = match kind {
            Kind::Trade => (2, 2, vec![]),
            Kind::Quote => (5, 0, vec![]),
            Kind::BookSnapshot => (0, 0, vec![side(false), side(false)]),
            Kind::BookDelta => (0, 1, vec![side(true)]),
            Kind::Lifecycle => (0, 2, vec![]),
            Kind::Status => (0, 3, vec![]),
        };
        Table {
            kind,
            common: Common::default(),
            seq: Prim::default(),
            checksum: Prim::default(),
            decs: (0..decs).map(|_| DecCol::new(views)).collect(),
            texts: (0..texts).map(|_| TextCol::default()).collect(),
            levels,
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.common.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An estimate of the bytes held (batches are cut by it too).
    pub fn bytes(&self) -> usize {
        self.common.bytes()
            + self.decs.iter().map(DecCol::bytes).sum::<usize>()
            + self.texts.iter().map(|t| t.col.bytes()).sum::<usize>()
            + self.levels.iter().map(LevelsCol::bytes).sum::<usize>()
            + self.seq.len() * 16
    }

    /// Append one record (of this table's kind).
    pub fn push(&mut self, r: &Record<'_>, p: &Provenance<'_>) {
        match r {
            Record::Trade(t) => {
                self.common.push(p, t.venue, &t.instrument, t.ts);
                self.seq.push(t.seq);
                self.decs[0].push(&t.price);
                self.decs[1].push(&t.size);
                self.texts[0].push(&match t.side {
                    Some(Side::Buy) => Text::Word("buy"),
                    Some(Side::Sell) => Text::Word("sell"),
                    None => Text::Null,
                });
                self.texts[1].push(&t.trade_id);
            }
            Record::Quote(q) => {
                self.common.push(p, q.venue, &q.instrument, q.ts);
                for (col, v) in
                    self.decs
                        .iter_mut()
                        .zip([&q.bid, &q.bid_size, &q.ask, &q.ask_size, &q.last])
                {
                    col.push(v);
                }
            }
            Record::BookSnapshot(b) => {
                self.common.push(p, b.venue, &b.instrument, b.ts);
                self.seq.push(b.seq);
                self.levels[0].push_levels(&b.bids);
                self.levels[1].push_levels(&b.asks);
                self.checksum.push(b.checksum);
            }
            Record::BookDelta(d) => {
                self.common.push(p, d.venue, &d.instrument, d.ts);
                self.seq.push(d.seq);
                self.texts[0].push(&Text::Word(match d.mode {
                    DeltaMode::Set => "set",
                    DeltaMode::Add => "add",
                }));
                self.levels[0].push_changes(&d.changes);
                self.checksum.push(d.checksum);
            }
            Record::Lifecycle(l) => {
                self.common.push(p, l.venue, &l.instrument, l.ts);
                self.texts[0].push(&l.event);
                push_raw(&mut self.texts[1].col, l.detail);
            }
            Record::Status(s) => {
                self.common.push(p, s.venue, &s.instrument, s.ts);
                self.texts[0].col.push(Some(b"venue"));
                self.texts[1].push(&s.status);
                push_raw(&mut self.texts[2].col, s.detail);
            }
        }
    }

    /// Append an ssmd status line (status table only).
    pub fn push_ssmd(&mut self, s: &SsmdStatus<'_>, p: &Provenance<'_>) {
        debug_assert_eq!(self.kind, Kind::Status);
        let c = &mut self.common;
        c.rx.push(Some(p.rx));
        c.venue.push(Some(s.venue.as_str().as_bytes()));
        // a subject token is plain text: never escaped
        c.instrument.col.push(Some(s.instrument));
        c.ts.push(None);
        c.provenance(p);
        self.texts[0].col.push(Some(b"ssmd"));
        match s.what {
            Some(w) if memchr::memchr(b'\\', w).is_some() => {
                let u = json::unescape(w);
                self.texts[1].col.push(u.as_deref().map(str::as_bytes));
            }
            w => self.texts[1].col.push(w),
        }
        push_raw(&mut self.texts[2].col, Raw(Some(s.detail)));
    }

    /// The rows so far as one struct array (the builder is empty after).
    pub fn finish(&mut self) -> Data {
        let len = self.len();
        let mut cols = self.common.head();
        match self.kind {
            Kind::Trade => {
                cols.push(self.seq.finish());
                self.decs[0].finish(&mut cols);
                self.decs[1].finish(&mut cols);
                cols.push(self.texts[0].col.finish());
                cols.push(self.texts[1].col.finish());
            }
            Kind::Quote => {
                for d in &mut self.decs {
                    d.finish(&mut cols);
                }
            }
            Kind::BookSnapshot => {
                cols.push(self.seq.finish());
                cols.push(self.levels[0].finish());
                cols.push(self.levels[1].finish());
                cols.push(self.checksum.finish());
            }
            Kind::BookDelta => {
                cols.push(self.seq.finish());
                cols.push(self.texts[0].col.finish());
                cols.push(self.levels[0].finish());
                cols.push(self.checksum.finish());
            }
            Kind::Lifecycle | Kind::Status => {
                for t in &mut self.texts {
                    cols.push(t.col.finish());
                }
            }
        }
        self.common.tail(&mut cols);
        struct_data(len, cols)
    }
}

/// A raw JSON value (kept on one line) as text, or null.
fn push_raw(col: &mut Utf8, raw: Raw<'_>) {
    match raw.0 {
        Some(v) if v != b"null" => col.push_with(|o| {
            push_one_line(o, v);
        }),
        _ => col.push(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Normalizer;

    fn field_names(f: &Field) -> Vec<&'static str> {
        f.children.iter().map(|c| c.name).collect()
    }

    #[test]
    fn every_kind_has_provenance_and_its_record_fields() {
        for (kind, fields) in crate::records::RECORD_FIELDS {
            let k = Kind::parse(kind).unwrap();
            let names = field_names(&k.schema(true));
            let stored = field_names(&k.schema(false));
            assert!(stored.iter().all(|n| !n.ends_with("_f64")), "{stored:?}");
            let views: Vec<_> = names.iter().filter(|n| !n.ends_with("_f64")).collect();
            assert_eq!(views.len(), stored.len());
            assert_eq!(&names[..4], ["rx", "venue", "instrument", "ts"]);
            assert_eq!(
                &names[names.len() - 4..],
                ["conn", "stream_seq", "stream_index", "record_index"]
            );
            for f in *fields {
                assert!(names.contains(f), "{kind}: {f} missing from {names:?}");
            }
        }
    }

    #[test]
    fn floats_are_views_of_finite_text() {
        assert_eq!(f64_of(b".48"), Some(0.48));
        assert_eq!(f64_of(b"0.00044780"), Some(0.000_447_8));
        assert_eq!(f64_of(b"1e-5"), Some(1e-5));
        assert_eq!(f64_of(b"inf"), None);
        assert_eq!(f64_of(b"NaN"), None);
        assert_eq!(f64_of(b"1e999"), None);
        assert_eq!(f64_of(b""), None);
        assert_eq!(f64_of(b"abc"), None);
    }

    #[test]
    fn rows_have_the_schema_s_columns() {
        let mut n = Normalizer::new(Venue::Kalshi);
        let frame = br#"{"type":"orderbook_delta","sid":2,"seq":3,"msg":{"market_ticker":"F\u00e9","price_dollars":"0.0800","delta_fp":"-5.00","side":"no"}}"#;
        let mut recs = Vec::new();
        n.records(frame, &mut recs);
        assert_eq!(recs.len(), 1);
        for views in [true, false] {
            let mut t = Table::new(Kind::of(&recs[0]), views);
            let p = Provenance {
                rx: 5,
                conn: br#"c\"1"#,
                stream_seq: Some(9),
                stream_index: None,
                record_index: 0,
            };
            t.push(&recs[0], &p);
            let schema = t.kind().schema(views);
            let d = t.finish();
            assert_eq!(d.len, 1);
            assert_eq!(d.children.len(), schema.children.len());
            for (c, f) in d.children.iter().zip(&schema.children) {
                assert_eq!(c.len, 1, "{}", f.name);
                assert_eq!(c.children.len(), f.children.len(), "{}", f.name);
            }
            assert!(t.is_empty());
        }
    }
}
