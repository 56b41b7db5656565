//! Names shared by every venue: venues, message kinds, and the routed item a
//! venue parser hands to the processor.

use std::borrow::Cow;

/// A venue ssmd captures. Mirrors `ssmd.types.Venue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Venue {
    Kalshi,
    Kraken,
    KrakenFutures,
    Polymarket,
}

impl Venue {
    pub const ALL: [Venue; 4] = [
        Venue::Kalshi,
        Venue::Kraken,
        Venue::KrakenFutures,
        Venue::Polymarket,
    ];

    /// Name used on the CLI and in subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            Venue::Kalshi => "kalshi",
            Venue::Kraken => "kraken",
            Venue::KrakenFutures => "kraken-futures",
            Venue::Polymarket => "polymarket",
        }
    }

    /// Accepts the CLI name or the module id (`kraken_futures`).
    pub fn parse(s: &str) -> Option<Venue> {
        match s {
            "kalshi" => Some(Venue::Kalshi),
            "kraken" => Some(Venue::Kraken),
            "kraken-futures" | "kraken_futures" => Some(Venue::KrakenFutures),
            "polymarket" => Some(Venue::Polymarket),
            _ => None,
        }
    }
}

/// What a routed item is, which decides where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Market data: archived and published.
    Data,
    /// Well-formed but of a type ssmd does not know: archived and counted.
    Unknown,
    /// Acks, heartbeats, errors, PONG: counted and reported, never archived.
    Control,
    /// An ssmd status record (gap, resync, duplicate): archived.
    Status,
    /// A frame or element that could not be parsed: archived with its raw bytes.
    Malformed,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Data => "data",
            Class::Unknown => "unknown",
            Class::Control => "control",
            Class::Status => "status",
            Class::Malformed => "malformed",
        }
    }
}

/// One message split out of a frame, routed but not yet enveloped.
#[derive(Debug, Clone)]
pub struct Item<'a> {
    pub class: Class,
    /// Subject kind token (`trade`, `book`, `best_bid_ask`, a control name…).
    pub kind: Cow<'a, str>,
    /// Venue instrument id, unsanitized; empty means "the connection".
    pub instrument: Cow<'a, str>,
    /// The message bytes: the venue's verbatim, or an ssmd JSON object.
    pub body: Cow<'a, [u8]>,
    /// Exchange timestamp in ms since the epoch.
    pub ts_ms: Option<i64>,
    /// Venue sequence number.
    pub seq: Option<u64>,
    /// Venue-provided id that identifies a re-sent copy of the same event.
    pub dedupe: Option<Cow<'a, str>>,
    /// Element index inside an array frame.
    pub elem: u32,
    /// Short reason, for malformed items.
    pub reason: &'static str,
}

impl<'a> Item<'a> {
    pub fn new(
        class: Class,
        kind: impl Into<Cow<'a, str>>,
        instrument: impl Into<Cow<'a, str>>,
        body: &'a [u8],
    ) -> Self {
        Item {
            class,
            kind: kind.into(),
            instrument: instrument.into(),
            body: Cow::Borrowed(body),
            ts_ms: None,
            seq: None,
            dedupe: None,
            elem: 0,
            reason: "",
        }
    }

    /// A frame or element that could not be parsed, kept as raw bytes.
    pub fn malformed(reason: &'static str, raw: &'a [u8]) -> Self {
        let mut it = Item::new(Class::Malformed, "malformed", "", raw);
        it.reason = reason;
        it
    }

    /// An ssmd status record (`{"ssmd":"gap",…}`) about `instrument`.
    pub fn status(instrument: impl Into<Cow<'a, str>>, body: Vec<u8>) -> Self {
        Item {
            class: Class::Status,
            kind: Cow::Borrowed("status"),
            instrument: instrument.into(),
            body: Cow::Owned(body),
            ts_ms: None,
            seq: None,
            dedupe: None,
            elem: 0,
            reason: "",
        }
    }
}

/// A request from the integrity checks to the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resync {
    pub instrument: String,
    pub reason: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venue_names_round_trip() {
        for v in Venue::ALL {
            assert_eq!(Venue::parse(v.as_str()), Some(v));
        }
        assert_eq!(Venue::parse("kraken_futures"), Some(Venue::KrakenFutures));
        assert_eq!(Venue::parse("binance"), None);
    }
}
