//! One module per venue, each implementing [`VenueParser`]: frame → routed
//! items (with that venue's integrity state) and frame → normalized records.
//! The processor and the bindings only ever see the trait.

use std::borrow::Cow;

use crate::error::Error;
use crate::json::{self, Doc, Tape};
use crate::model::{Class, Item, Resync, Venue};
use crate::records::Record;

pub mod kalshi;
pub mod kraken;
pub mod kraken_futures;
pub mod polymarket;

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// Running counts of one processor (never reset by a batch).
        #[derive(Debug, Default, Clone, PartialEq, Eq)]
        pub struct Counters { $(pub $name: u64,)* }

        impl Counters {
            /// `(name, value)` pairs, for metrics.
            pub fn pairs(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }
    };
}

counters!(
    frames,
    bytes,
    data,
    control,
    malformed,
    unknown,
    status,
    gaps,
    late,
    duplicates,
    restarts,
    resyncs,
    checksum_ok,
    checksum_mismatch,
    checksum_unverified,
    checksum_inferred,
    line_breaks,
);

/// Everything a venue parser writes to while handling one frame.
pub struct Out<'o, 'a> {
    pub items: &'o mut Vec<Item<'a>>,
    pub resyncs: &'o mut Vec<Resync>,
    pub counters: &'o mut Counters,
    /// Replaying a recorded capture: sequence numbers that go back mean a
    /// reconnect, not a duplicate.
    pub replay: bool,
}

impl<'a> Out<'_, 'a> {
    pub fn push(&mut self, it: Item<'a>) {
        self.items.push(it);
    }

    pub fn malformed(&mut self, reason: &'static str, raw: &'a [u8]) {
        self.items.push(Item::malformed(reason, raw));
    }

    pub fn control(&mut self, kind: impl Into<Cow<'a, str>>, raw: &'a [u8]) {
        self.items.push(Item::new(Class::Control, kind, "", raw));
    }

    pub fn resync(&mut self, instrument: &str, reason: &'static str) {
        self.counters.resyncs += 1;
        self.resyncs.push(Resync {
            instrument: instrument.to_owned(),
            reason,
        });
    }

    /// A status record: `{"ssmd":<what>, <fields>}` about `instrument`.
    pub fn status(
        &mut self,
        instrument: impl Into<Cow<'a, str>>,
        what: &str,
        fields: &[(&str, StatusVal<'_>)],
    ) {
        let mut body = Vec::with_capacity(96);
        body.extend_from_slice(b"{\"ssmd\":");
        json::write_str(&mut body, what.as_bytes());
        for (k, v) in fields {
            body.push(b',');
            json::write_str(&mut body, k.as_bytes());
            body.push(b':');
            match v {
                StatusVal::U(n) => {
                    body.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes())
                }
                StatusVal::S(s) => json::write_str(&mut body, s.as_bytes()),
            }
        }
        body.push(b'}');
        self.items.push(Item::status(instrument, body));
    }
}

/// A value in a status record.
#[derive(Debug, Clone, Copy)]
pub enum StatusVal<'s> {
    U(u64),
    S(&'s str),
}

/// A setting a connector hands to its venue's parser.
#[derive(Debug, Clone, Copy)]
pub enum Setting<'s> {
    /// Kraken spot: a pair's price and quantity decimals (book checksums).
    Precision {
        symbol: &'s str,
        price: u32,
        qty: u32,
    },
    /// Kraken spot: the subscribed book depth.
    BookDepth(usize),
    /// Kalshi: the category of a series, from the secmaster.
    Category { series: &'s str, category: &'s str },
}

impl Setting<'_> {
    /// The Python method that makes this setting.
    pub fn method(&self) -> &'static str {
        match self {
            Setting::Precision { .. } => "set_precision",
            Setting::BookDepth(_) => "set_book_depth",
            Setting::Category { .. } => "set_category",
        }
    }
}

/// One venue's parser: every piece of its wire knowledge (routing,
/// integrity, normalization) is behind this trait, in `venues/<venue>.rs`.
/// One instance per connection holds that connection's state.
pub trait VenueParser: Send + Sync + std::fmt::Debug {
    fn venue(&self) -> Venue;

    /// Depth of containers whose fields routing reads from the tape (root = 1).
    fn tape_depth(&self) -> usize {
        2
    }

    /// Route one frame of a batch (valid UTF-8, checked by the caller) into
    /// items, updating sequence and book state.
    fn parse<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>);

    /// The subject category of a routed item, for venues whose subjects have one.
    fn category(&self, _item: &Item<'_>) -> Option<&str> {
        None
    }

    /// Normalize one frame (or archived message) to records; control frames,
    /// unknown types and unparsable input give none.
    fn normalize<'a>(&self, frame: &'a [u8], out: &mut Vec<Record<'a>>);

    /// [`Self::normalize`] with a tape kept by the caller between frames, for
    /// venues that look fields up on it instead of walking the bytes again.
    fn normalize_with<'a>(&self, frame: &'a [u8], _tape: &mut Tape, out: &mut Vec<Record<'a>>) {
        self.normalize(frame, out);
    }

    /// Apply a setting; one that does not apply to this venue is an error.
    fn configure(&mut self, setting: Setting<'_>) -> Result<(), Error> {
        Err(not_for(self.venue(), setting))
    }

    /// Forget the state kept for one instrument (it was unsubscribed or
    /// moved to another connection), so per-connection state stays bounded
    /// by what is subscribed.
    fn forget(&mut self, instrument: &str);

    /// Forget sequence and book state (a new connection); settings stay.
    fn reset(&mut self);
}

/// The error for a setting `venue` has no use for.
pub(crate) fn not_for(venue: Venue, setting: Setting<'_>) -> Error {
    Error::Config(format!(
        "{} does not apply to {}",
        setting.method(),
        venue.as_str()
    ))
}

/// A fresh parser (with a connection's empty state) for `venue`.
pub fn parser(venue: Venue) -> Box<dyn VenueParser> {
    match venue {
        Venue::Kalshi => Box::<kalshi::Kalshi>::default(),
        Venue::Kraken => Box::<kraken::Kraken>::default(),
        Venue::KrakenFutures => Box::<kraken_futures::KrakenFutures>::default(),
        Venue::Polymarket => Box::<polymarket::Polymarket>::default(),
    }
}

/// Parse a frame that must be one JSON object; report it malformed if not.
pub(crate) fn parse_object<'a, 't>(
    frame: &'a [u8],
    tape: &'t mut Tape,
    out: &mut Out<'_, 'a>,
) -> Option<Doc<'a, 't>> {
    match json::parse_doc(frame, tape) {
        Ok(v) if v.root.ty == json::Ty::Object => Some(v),
        Ok(_) => {
            out.malformed("not a JSON object", frame);
            None
        }
        Err(e) => {
            out.malformed(e.reason, frame);
            None
        }
    }
}

/// A string field as text (numbers are accepted as their literal text);
/// an empty string counts as missing, so it can never become an empty
/// subject token.
pub(crate) fn text<'a>(v: Option<json::Val<'a>>) -> Option<Cow<'a, str>> {
    let v = v?;
    let t = match v.ty {
        json::Ty::String => v.str(),
        json::Ty::Number => json::utf8(v.raw).map(Cow::Borrowed),
        _ => None,
    }?;
    (!t.is_empty()).then_some(t)
}
