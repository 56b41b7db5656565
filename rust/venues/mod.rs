//! One module per venue: frame → routed items, with that venue's integrity
//! state. Every venue has the same shape: a state struct with `parse` and
//! `reset`, dispatched through [`VenueState`].

use std::borrow::Cow;

use crate::json::{self, Doc, Tape};
use crate::model::{Class, Item, Resync, Venue};

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

/// Per-connection venue state.
#[derive(Debug)]
pub enum VenueState {
    Kalshi(kalshi::Kalshi),
    Kraken(kraken::Kraken),
    KrakenFutures(kraken_futures::KrakenFutures),
    Polymarket(polymarket::Polymarket),
}

impl VenueState {
    pub fn new(venue: Venue) -> Self {
        match venue {
            Venue::Kalshi => VenueState::Kalshi(kalshi::Kalshi::default()),
            Venue::Kraken => VenueState::Kraken(kraken::Kraken::default()),
            Venue::KrakenFutures => {
                VenueState::KrakenFutures(kraken_futures::KrakenFutures::default())
            }
            Venue::Polymarket => VenueState::Polymarket(polymarket::Polymarket::default()),
        }
    }

    /// Route one frame (valid UTF-8 already checked by the caller).
    pub fn parse<'a>(&mut self, frame: &'a [u8], tape: &mut Tape, out: &mut Out<'_, 'a>) {
        match self {
            VenueState::Kalshi(s) => s.parse(frame, tape, out),
            VenueState::Kraken(s) => s.parse(frame, tape, out),
            VenueState::KrakenFutures(s) => s.parse(frame, tape, out),
            VenueState::Polymarket(s) => s.parse(frame, tape, out),
        }
    }

    /// Forget the state kept for one instrument (it was unsubscribed or
    /// moved to another connection), so per-connection state stays bounded
    /// by what is subscribed. Sequence state per Kalshi `sid` is shared by
    /// many markets and stays.
    pub fn forget(&mut self, instrument: &str) {
        match self {
            VenueState::Kalshi(s) => s.forget(instrument),
            VenueState::Kraken(s) => {
                s.forget(instrument);
            }
            VenueState::KrakenFutures(s) => s.forget(instrument),
            VenueState::Polymarket(s) => {
                s.epochs.remove(instrument);
            }
        }
    }

    /// Forget sequence and book state (a new connection).
    pub fn reset(&mut self) {
        match self {
            VenueState::Kalshi(s) => *s = kalshi::Kalshi::default(),
            VenueState::Kraken(s) => s.reset(),
            VenueState::KrakenFutures(s) => *s = kraken_futures::KrakenFutures::default(),
            VenueState::Polymarket(s) => *s = polymarket::Polymarket::default(),
        }
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

/// Cheap wrapper: turn the leading `SERIES` of `SERIES-EVENT-MARKET` into a Cow.
pub(crate) fn series_of<'a>(ticker: &Cow<'a, str>) -> Cow<'a, str> {
    let end = ticker.find('-').unwrap_or(ticker.len());
    match ticker {
        Cow::Borrowed(t) => Cow::Borrowed(&t[..end]),
        Cow::Owned(t) => Cow::Owned(t[..end].to_owned()),
    }
}
