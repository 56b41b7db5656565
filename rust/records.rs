//! The normalized model (docs/core.md): `Trade`, `Quote`, `BookSnapshot`,
//! `BookDelta`, `Lifecycle`, `Status`, and their one JSONL encoding.
//!
//! Each struct is declared once, in [`records!`] below: the declaration
//! order of its fields is the order of the keys in its JSON line
//! (`{"type":<kind>,<field>:<value>,…}`) and the list `FIELDS` that Python's
//! `ssmd.types` is checked against (`_core.record_fields()`). Prices and
//! sizes keep their exact decimal text ([`Text`]), borrowed from the frame;
//! text ssmd derives (cents to dollars, `1 − price`) is short and kept
//! inline, so every record without a list of levels is `Copy`.

use crate::decimal;
use crate::envelope::push_one_line;
use crate::json::{self, Ty, Val};
use crate::model::Venue;

/// Derived decimal text, kept inline (at most [`Inline::CAP`] bytes: the
/// longest ssmd derives is `1 − p` of an i128-scaled price, 41 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Inline {
    len: u8,
    buf: [u8; Inline::CAP],
}

impl Inline {
    pub const CAP: usize = 46;

    fn new(s: &str) -> Option<Inline> {
        let b = s.as_bytes();
        let mut buf = [0u8; Inline::CAP];
        buf.get_mut(..b.len())?.copy_from_slice(b);
        Some(Inline {
            len: u8::try_from(b.len()).ok()?,
            buf,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl std::fmt::Debug for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// A text field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text<'a> {
    Null,
    /// A JSON string literal from the wire, quotes included, escapes kept
    /// (written back byte for byte).
    Lit(&'a [u8]),
    /// The text of a JSON number from the wire (written as a string of the
    /// same digits).
    Num(&'a [u8]),
    /// Decimal text ssmd derived.
    Dec(Inline),
    /// A fixed word (`tick_size_change`, an event type).
    Word(&'static str),
}

impl<'a> Text<'a> {
    /// A string (non-empty) or number value; anything else is null.
    pub fn of(v: Option<Val<'a>>) -> Text<'a> {
        match v {
            Some(v) if v.ty == Ty::String && v.raw.len() > 2 => Text::Lit(v.raw),
            Some(v) if v.ty == Ty::Number => Text::Num(v.raw),
            _ => Text::Null,
        }
    }

    fn derived(s: Option<String>) -> Text<'static> {
        s.and_then(|s| Inline::new(&s))
            .map_or(Text::Null, Text::Dec)
    }

    /// Integer cents (legacy Kalshi) as dollar text: `55` → `0.5500`.
    pub fn cents(v: Option<Val<'_>>) -> Text<'static> {
        Text::derived(v.and_then(|v| v.as_i64()).map(decimal::cents_to_dollars))
    }

    /// Integer contract count as fixed-point text: `10` → `10.00`.
    pub fn count(v: Option<Val<'_>>) -> Text<'static> {
        Text::derived(v.and_then(|v| v.as_i64()).map(decimal::count_fp))
    }

    /// `1 − self` with the same number of decimals (Kalshi NO price → YES ask).
    pub fn one_minus(&self) -> Text<'static> {
        Text::derived(self.text().and_then(decimal::one_minus))
    }

    /// `self`, or `other()` when `self` is null.
    pub fn or(self, other: impl FnOnce() -> Text<'a>) -> Text<'a> {
        if self.is_null() {
            other()
        } else {
            self
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Text::Null)
    }

    /// The characters of the value (still JSON-escaped for a wire string).
    pub fn text(&self) -> Option<&[u8]> {
        match self {
            Text::Lit(l) => Some(&l[1..l.len() - 1]),
            Text::Num(n) => Some(n),
            Text::Dec(d) => Some(d.as_bytes()),
            Text::Word(w) => Some(w.as_bytes()),
            Text::Null => None,
        }
    }

    /// The value's text borrowed from the frame (`None` for derived or null).
    pub fn wire(&self) -> Option<&'a [u8]> {
        match *self {
            Text::Lit(l) => Some(&l[1..l.len() - 1]),
            Text::Num(n) => Some(n),
            _ => None,
        }
    }
}

/// Aggressor side of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// `buy`/`BUY`, `yes`, `bid` → buy; `sell`/`SELL`, `no`, `ask` → sell.
    pub fn of(t: Text<'_>) -> Option<Side> {
        match t.text()? {
            s if s.eq_ignore_ascii_case(b"buy") || s == b"yes" || s == b"bid" => Some(Side::Buy),
            s if s.eq_ignore_ascii_case(b"sell") || s == b"no" || s == b"ask" => Some(Side::Sell),
            _ => None,
        }
    }
}

/// Side of a book level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookSide {
    Bid,
    Ask,
}

/// How a delta's size applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaMode {
    /// The size is the level's new total.
    Set,
    /// The size is a change to the level (Kalshi).
    Add,
}

/// One price level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level<'a> {
    pub price: Text<'a>,
    pub size: Text<'a>,
}

/// One change of a book delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<'a> {
    pub side: BookSide,
    pub price: Text<'a>,
    pub size: Text<'a>,
}

/// A JSON value copied from the wire as is (`detail`), or null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(pub Option<&'a [u8]>);

/// How one field value is written in the JSON line.
pub trait JsonField {
    fn write_json(&self, out: &mut Vec<u8>);
}

impl JsonField for Venue {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        out.extend_from_slice(self.as_str().as_bytes());
        out.push(b'"');
    }
}

impl JsonField for Text<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Text::Lit(l) => out.extend_from_slice(l),
            Text::Num(n) => {
                out.push(b'"');
                out.extend_from_slice(n);
                out.push(b'"');
            }
            Text::Dec(d) => json::write_str(out, d.as_bytes()),
            Text::Word(w) => json::write_str(out, w.as_bytes()),
            Text::Null => out.extend_from_slice(b"null"),
        }
    }
}

impl JsonField for Option<i64> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Some(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
    }
}

impl JsonField for Option<u64> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Some(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
    }
}

impl JsonField for Option<Side> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self {
            Some(Side::Buy) => b"\"buy\"",
            Some(Side::Sell) => b"\"sell\"",
            None => b"null",
        });
    }
}

impl JsonField for DeltaMode {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self {
            DeltaMode::Set => b"\"set\"",
            DeltaMode::Add => b"\"add\"",
        });
    }
}

impl JsonField for Vec<Level<'_>> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, l) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'[');
            l.price.write_json(out);
            out.push(b',');
            l.size.write_json(out);
            out.push(b']');
        }
        out.push(b']');
    }
}

impl JsonField for Vec<Change<'_>> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, c) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(match c.side {
                BookSide::Bid => b"[\"bid\",",
                BookSide::Ask => b"[\"ask\",",
            });
            c.price.write_json(out);
            out.push(b',');
            c.size.write_json(out);
            out.push(b']');
        }
        out.push(b']');
    }
}

impl JsonField for Raw<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        push_one_line(out, self.0.unwrap_or(b"null"));
    }
}

/// Declares each record struct once; its fields in order are its JSON keys.
macro_rules! records {
    ($(
        $(#[$meta:meta])*
        $name:ident = $kind:literal {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq)]
            pub struct $name<'a> {
                $( $(#[$fmeta])* pub $field: $ty, )*
            }

            impl $name<'_> {
                /// The record's `type`.
                pub const KIND: &'static str = $kind;
                /// Field names in JSON order (after `type`).
                pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

                /// Append the record's JSON line (`\n` included).
                pub fn write_json(&self, out: &mut Vec<u8>) {
                    out.extend_from_slice(concat!("{\"type\":\"", $kind, "\"").as_bytes());
                    $(
                        out.extend_from_slice(concat!(",\"", stringify!($field), "\":").as_bytes());
                        self.$field.write_json(out);
                    )*
                    out.extend_from_slice(b"}\n");
                }
            }

            impl<'a> From<$name<'a>> for Record<'a> {
                fn from(r: $name<'a>) -> Self {
                    Record::$name(r)
                }
            }
        )*

        /// One normalized record.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Record<'a> {
            $( $name($name<'a>), )*
        }

        impl Record<'_> {
            /// Append the record's JSON line (`\n` included).
            pub fn write_json(&self, out: &mut Vec<u8>) {
                match self {
                    $( Record::$name(r) => r.write_json(out), )*
                }
            }

            pub fn kind(&self) -> &'static str {
                match self {
                    $( Record::$name(_) => $kind, )*
                }
            }
        }

        /// `(type, fields in JSON order)` of every record type.
        pub const RECORD_FIELDS: &[(&str, &[&str])] = &[$( ($kind, $name::FIELDS), )*];
    };
}

records! {
    /// A trade print.
    #[derive(Copy)]
    Trade = "trade" {
        venue: Venue,
        instrument: Text<'a>,
        /// Exchange time, ms since the epoch.
        ts: Option<i64>,
        seq: Option<u64>,
        price: Text<'a>,
        size: Text<'a>,
        /// Aggressor side (Kalshi: taker bought YES = buy).
        side: Option<Side>,
        trade_id: Text<'a>,
    }

    /// Top of book / ticker.
    #[derive(Copy)]
    Quote = "quote" {
        venue: Venue,
        instrument: Text<'a>,
        ts: Option<i64>,
        bid: Text<'a>,
        bid_size: Text<'a>,
        ask: Text<'a>,
        ask_size: Text<'a>,
        last: Text<'a>,
    }

    /// A full book; levels best first.
    BookSnapshot = "book_snapshot" {
        venue: Venue,
        instrument: Text<'a>,
        ts: Option<i64>,
        seq: Option<u64>,
        bids: Vec<Level<'a>>,
        asks: Vec<Level<'a>>,
        checksum: Option<u64>,
    }

    /// Changes to a book.
    BookDelta = "book_delta" {
        venue: Venue,
        instrument: Text<'a>,
        ts: Option<i64>,
        seq: Option<u64>,
        mode: DeltaMode,
        changes: Vec<Change<'a>>,
        checksum: Option<u64>,
    }

    /// A market or event lifecycle change; `detail` is the venue's object.
    #[derive(Copy)]
    Lifecycle = "lifecycle" {
        venue: Venue,
        instrument: Text<'a>,
        ts: Option<i64>,
        event: Text<'a>,
        detail: Raw<'a>,
    }

    /// A venue system status; `detail` is the venue's object.
    #[derive(Copy)]
    Status = "status" {
        venue: Venue,
        instrument: Text<'a>,
        ts: Option<i64>,
        status: Text<'a>,
        detail: Raw<'a>,
    }
}

/// Sort levels by price (best first: bids descending, asks ascending);
/// unparsable prices keep their place.
pub fn sort_levels(levels: &mut [Level<'_>], side: BookSide) {
    levels.sort_by(|a, b| {
        let o = match (a.price.text(), b.price.text()) {
            (Some(x), Some(y)) => decimal::cmp(x, y),
            _ => std::cmp::Ordering::Equal,
        };
        match side {
            BookSide::Bid => o.reverse(),
            BookSide::Ask => o,
        }
    });
}

/// `[{"price":…,<size_key>:…}, …]` levels.
pub fn object_levels<'a>(v: Option<Val<'a>>, size_key: &str) -> Vec<Level<'a>> {
    v.iter()
        .flat_map(|v| v.items())
        .map(|l| {
            let [p, q] = l.get_many(["price", size_key]);
            Level {
                price: Text::of(p),
                size: Text::of(q),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_order_is_declaration_order() {
        let t = Trade {
            venue: Venue::Kraken,
            instrument: Text::Lit(br#""BTC/USD""#),
            ts: Some(5),
            seq: None,
            price: Text::Num(b"1.50"),
            size: Text::cents(json::parse(b"55").ok()),
            side: Some(Side::Sell),
            trade_id: Text::Null,
        };
        let mut out = Vec::new();
        Record::from(t).write_json(&mut out);
        assert_eq!(
            out,
            br#"{"type":"trade","venue":"kraken","instrument":"BTC/USD","ts":5,"seq":null,"price":"1.50","size":"0.5500","side":"sell","trade_id":null}
"#
        );
        assert_eq!(
            Trade::FIELDS,
            [
                "venue",
                "instrument",
                "ts",
                "seq",
                "price",
                "size",
                "side",
                "trade_id"
            ]
        );
        assert_eq!(RECORD_FIELDS.len(), 6);
    }

    #[test]
    fn derived_text_fits_inline() {
        let big = json::parse(b"-9223372036854775807").ok();
        assert!(matches!(Text::cents(big), Text::Dec(_)));
        assert!(matches!(Text::count(big), Text::Dec(_)));
        // the widest 1 - p: 38 digits after the point
        let p = format!("0.{}", "1".repeat(37));
        let one = Text::Num(p.as_bytes()).one_minus();
        assert_eq!(one.text().map(<[u8]>::len), Some(39));
    }
}
