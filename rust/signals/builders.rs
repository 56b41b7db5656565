//! State builders: bounded per-instrument rolling computations over the
//! normalized records, O(1) (amortized) per record.
//!
//! | builder | records | fields |
//! |---|---|---|
//! | `volume_profile` | trades | dollar_volume, contracts, trades, buy/sell contracts and ratio, average trade size, last price |
//! | `price_profile` | quotes | mid, first, high, low, change, change_pct (of the mid), last, quotes |
//! | `spread` | quotes | bid, ask, sizes, spread, spread_pct, avg_spread over the window |
//! | `lifecycle` | lifecycle | event, phase, when it changed, events |
//!
//! Times are receive times (`rx`, ns): the same in a live runner and in a
//! backtest of the archive it wrote.
use super::fixed::{self, Fixed, NoDollars, ONE};
use super::window::{Clock, Extreme, FirstWindow, MonoWindow, SumWindow, Sums};
use crate::records::{Lifecycle, Quote, Side, Trade};

/// A builder and its parameters, as a signal declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    Volume { window: u64, resolution: u64 },
    Price { window: u64, resolution: u64 },
    Spread { window: u64, resolution: u64 },
    Lifecycle,
}

/// Which records a builder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    Trades,
    Quotes,
    Lifecycle,
}

impl Spec {
    /// `volume_profile`, `price_profile`, `spread` or `lifecycle` with a
    /// window and resolution in ns (ignored by `lifecycle`).
    pub fn parse(kind: &str, window: u64, resolution: u64) -> Option<Spec> {
        Some(match kind {
            "volume_profile" => Spec::Volume { window, resolution },
            "price_profile" => Spec::Price { window, resolution },
            "spread" => Spec::Spread { window, resolution },
            "lifecycle" => Spec::Lifecycle,
            _ => return None,
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Spec::Volume { .. } => "volume_profile",
            Spec::Price { .. } => "price_profile",
            Spec::Spread { .. } => "spread",
            Spec::Lifecycle => "lifecycle",
        }
    }

    pub fn reads(&self) -> Reads {
        match self {
            Spec::Volume { .. } => Reads::Trades,
            Spec::Price { .. } | Spec::Spread { .. } => Reads::Quotes,
            Spec::Lifecycle => Reads::Lifecycle,
        }
    }

    /// Subject kinds carrying the records this builder reads.
    pub fn subject_kinds(&self) -> &'static [&'static str] {
        match self.reads() {
            Reads::Trades => &["trade"],
            Reads::Quotes => &["ticker", "best_bid_ask"],
            Reads::Lifecycle => &["lifecycle", "new_market", "market_resolved"],
        }
    }

    /// The field names of this builder's view, in payload order.
    pub fn fields(&self) -> &'static [&'static str] {
        match self {
            Spec::Volume { .. } => VOLUME_FIELDS,
            Spec::Price { .. } => PRICE_FIELDS,
            Spec::Spread { .. } => SPREAD_FIELDS,
            Spec::Lifecycle => LIFECYCLE_FIELDS,
        }
    }

    pub fn new_state(&self) -> State {
        match *self {
            Spec::Volume { window, resolution } => State::Volume(Volume {
                window,
                sums: SumWindow::new(window, resolution),
                clock: Clock::default(),
                last_price: None,
                last_rx: 0,
            }),
            Spec::Price { window, resolution } => State::Price(Price {
                window,
                first: FirstWindow::new(window, resolution),
                high: MonoWindow::new(window, resolution, Extreme::Max),
                low: MonoWindow::new(window, resolution, Extreme::Min),
                clock: Clock::default(),
                mid: None,
                last: None,
                last_rx: 0,
            }),
            Spec::Spread { window, resolution } => State::Spread(Spread {
                window,
                sums: SumWindow::new(window, resolution),
                clock: Clock::default(),
                top: None,
            }),
            Spec::Lifecycle => State::Lifecycle(LifecycleState::default()),
        }
    }
}

pub const VOLUME_FIELDS: &[&str] = &[
    "window",
    "dollar_volume",
    "contracts",
    "trades",
    "buy_contracts",
    "sell_contracts",
    "buy_sell_ratio",
    "avg_trade_size",
    "last_price",
    "unpriced",
];
pub const PRICE_FIELDS: &[&str] = &[
    "window",
    "mid",
    "first",
    "high",
    "low",
    "change",
    "change_pct",
    "last",
    "quotes",
];
pub const SPREAD_FIELDS: &[&str] = &[
    "window",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "spread",
    "spread_pct",
    "avg_spread",
    "quotes",
];
pub const LIFECYCLE_FIELDS: &[&str] = &["event", "phase", "ts", "rx", "changed_rx", "events"];

/// One value of a view.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// Exact decimal (fixed point); shown as a float.
    Dec(Fixed),
    Float(f64),
    Int(i64),
    Str(String),
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Dec(d) => Some(fixed::to_f64(*d)),
            Value::Float(f) => Some(*f),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

fn dec(v: Option<Fixed>) -> Value {
    v.map_or(Value::Null, Value::Dec)
}

fn int(v: u64) -> Value {
    Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

#[allow(clippy::cast_precision_loss)]
fn secs(ns: u64) -> Value {
    Value::Float(ns as f64 / 1e9)
}

/// `a / b` as a float; `None` when `b` is zero.
fn ratio(a: Fixed, b: Fixed) -> Option<f64> {
    (b != 0).then(|| fixed::to_f64(a) / fixed::to_f64(b))
}

/// The state of one builder for one instrument.
#[derive(Debug, Clone)]
pub enum State {
    Volume(Volume),
    Price(Price),
    Spread(Spread),
    Lifecycle(LifecycleState),
}

/// What a record did to a builder, for the engine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Used,
    /// A trade counted without dollars (not USD-quoted).
    NotUsd,
    /// A trade whose price or size is not a decimal, or a quote without
    /// both sides: not counted.
    Unreadable,
    /// Not a record this builder reads.
    Ignored,
}

impl State {
    /// Move the window to `now` (every record of the instrument does this
    /// for every builder, so views are as of the record being evaluated).
    #[inline]
    pub fn expire(&mut self, now: u64) {
        match self {
            State::Volume(v) => {
                let now = v.clock.at(now);
                v.sums.expire(now);
            }
            State::Price(p) => {
                let now = p.clock.at(now);
                p.first.expire(now);
                p.high.expire(now);
                p.low.expire(now);
            }
            State::Spread(s) => {
                let now = s.clock.at(now);
                s.sums.expire(now);
            }
            State::Lifecycle(_) => {}
        }
    }

    #[inline]
    pub fn trade(&mut self, t: &Trade<'_>, rx: u64) -> Effect {
        match self {
            State::Volume(v) => v.add(t, rx),
            _ => Effect::Ignored,
        }
    }

    #[inline]
    pub fn quote(&mut self, q: &Quote<'_>, rx: u64) -> Effect {
        match self {
            State::Price(p) => p.add(q, rx),
            State::Spread(s) => s.add(q, rx),
            _ => Effect::Ignored,
        }
    }

    #[inline]
    pub fn lifecycle(&mut self, l: &Lifecycle<'_>, rx: u64) -> Effect {
        match self {
            State::Lifecycle(s) => s.add(l, rx),
            _ => Effect::Ignored,
        }
    }

    /// A field as an exact decimal, when the field is one.
    pub fn exact(&self, field: &str) -> Option<Fixed> {
        match self.value(field) {
            Value::Dec(d) => Some(d),
            Value::Int(i) => Some(i128::from(i) * ONE),
            _ => None,
        }
    }

    /// One field of the view.
    pub fn value(&self, field: &str) -> Value {
        match self {
            State::Volume(v) => v.value(field),
            State::Price(p) => p.value(field),
            State::Spread(s) => s.value(field),
            State::Lifecycle(l) => l.value(field),
        }
    }

    /// Every field of the view, in order.
    pub fn view(&self, spec: &Spec) -> Vec<(&'static str, Value)> {
        spec.fields().iter().map(|f| (*f, self.value(f))).collect()
    }

    /// Entries held by the windows (for memory figures and tests).
    pub fn entries(&self) -> usize {
        match self {
            State::Volume(v) => v.sums.len(),
            State::Price(p) => p.first.entries() + p.high.entries() + p.low.entries(),
            State::Spread(s) => s.sums.len(),
            State::Lifecycle(_) => 0,
        }
    }
}

/// Sums of a volume window.
#[derive(Debug, Clone, Copy, Default)]
pub struct VolumeSums {
    pub dollars: Fixed,
    pub contracts: Fixed,
    pub buy: Fixed,
    pub sell: Fixed,
    pub trades: u64,
    pub unpriced: u64,
}

impl Sums for VolumeSums {
    #[inline]
    fn add(&mut self, o: &Self) {
        self.dollars += o.dollars;
        self.contracts += o.contracts;
        self.buy += o.buy;
        self.sell += o.sell;
        self.trades += o.trades;
        self.unpriced += o.unpriced;
    }
    #[inline]
    fn sub(&mut self, o: &Self) {
        self.dollars -= o.dollars;
        self.contracts -= o.contracts;
        self.buy -= o.buy;
        self.sell -= o.sell;
        self.trades -= o.trades;
        self.unpriced -= o.unpriced;
    }
}

/// `volume_profile`: trades over a window.
#[derive(Debug, Clone)]
pub struct Volume {
    window: u64,
    sums: SumWindow<VolumeSums>,
    clock: Clock,
    last_price: Option<Fixed>,
    last_rx: u64,
}

impl Volume {
    #[inline]
    fn add(&mut self, t: &Trade<'_>, rx: u64) -> Effect {
        let Some(size_parts) = t.size.text().and_then(fixed::parse_parts) else {
            return Effect::Unreadable;
        };
        let Some(price_parts) = t.price.text().and_then(fixed::parse_parts) else {
            return Effect::Unreadable;
        };
        let (Some(size), Some(price)) = (
            fixed::rescale(size_parts.0, size_parts.1),
            fixed::rescale(price_parts.0, price_parts.1),
        ) else {
            return Effect::Unreadable;
        };
        let (dollars, effect) = match fixed::dollars_of(t, price_parts, size_parts) {
            Ok(d) => (d, Effect::Used),
            Err(NoDollars::NotUsd) => (0, Effect::NotUsd),
            Err(NoDollars::Unreadable) => return Effect::Unreadable,
        };
        let now = self.clock.at(rx);
        let s = VolumeSums {
            dollars,
            contracts: size,
            buy: if t.side == Some(Side::Buy) { size } else { 0 },
            sell: if t.side == Some(Side::Sell) { size } else { 0 },
            trades: 1,
            unpriced: u64::from(effect == Effect::NotUsd),
        };
        self.sums.push(now, s);
        self.last_price = Some(price);
        self.last_rx = now;
        effect
    }

    fn value(&self, field: &str) -> Value {
        let s = self.sums.total();
        match field {
            "window" => secs(self.window),
            "dollar_volume" => Value::Dec(s.dollars),
            "contracts" => Value::Dec(s.contracts),
            "trades" => int(s.trades),
            "buy_contracts" => Value::Dec(s.buy),
            "sell_contracts" => Value::Dec(s.sell),
            "buy_sell_ratio" => ratio(s.buy, s.sell).map_or(Value::Null, Value::Float),
            "avg_trade_size" => {
                #[allow(clippy::cast_precision_loss)]
                let v = (s.trades > 0).then(|| fixed::to_f64(s.contracts) / s.trades as f64);
                v.map_or(Value::Null, Value::Float)
            }
            // the last trade, while it is in the window
            "last_price" => dec(self.last_price.filter(|_| !self.sums.is_empty())),
            "unpriced" => int(s.unpriced),
            _ => Value::Null,
        }
    }
}

/// `(bid + ask) / 2` of a quote with both sides.
fn mid_of(q: &Quote<'_>) -> Option<(Fixed, Fixed, Fixed)> {
    let bid = fixed::parse(q.bid.text()?)?;
    let ask = fixed::parse(q.ask.text()?)?;
    Some((bid, ask, (bid + ask) / 2))
}

/// `price_profile`: the mid of quotes over a window.
#[derive(Debug, Clone)]
pub struct Price {
    window: u64,
    first: FirstWindow,
    high: MonoWindow,
    low: MonoWindow,
    clock: Clock,
    mid: Option<Fixed>,
    last: Option<Fixed>,
    last_rx: u64,
}

impl Price {
    #[inline]
    fn add(&mut self, q: &Quote<'_>, rx: u64) -> Effect {
        if let Some(l) = q.last.text().and_then(fixed::parse) {
            self.last = Some(l);
        }
        let Some((_, _, mid)) = mid_of(q) else {
            return Effect::Unreadable;
        };
        let now = self.clock.at(rx);
        self.first.push(now, mid);
        self.high.push(now, mid);
        self.low.push(now, mid);
        self.mid = Some(mid);
        self.last_rx = now;
        Effect::Used
    }

    fn value(&self, field: &str) -> Value {
        let live = self.first.count() > 0;
        let mid = self.mid.filter(|_| live);
        let first = self.first.first();
        match field {
            "window" => secs(self.window),
            "mid" => dec(mid),
            "first" => dec(first),
            "high" => dec(self.high.get()),
            "low" => dec(self.low.get()),
            "change" => dec(mid.zip(first).map(|(m, f)| m - f)),
            "change_pct" => mid
                .zip(first)
                .and_then(|(m, f)| ratio(m - f, f))
                .map_or(Value::Null, Value::Float),
            "last" => dec(self.last),
            "quotes" => int(self.first.count()),
            _ => Value::Null,
        }
    }
}

/// Sums of a spread window.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpreadSums {
    pub spread: Fixed,
    pub quotes: u64,
}

impl Sums for SpreadSums {
    #[inline]
    fn add(&mut self, o: &Self) {
        self.spread += o.spread;
        self.quotes += o.quotes;
    }
    #[inline]
    fn sub(&mut self, o: &Self) {
        self.spread -= o.spread;
        self.quotes -= o.quotes;
    }
}

/// The latest top of book.
#[derive(Debug, Clone, Copy)]
pub struct Top {
    bid: Fixed,
    ask: Fixed,
    bid_size: Option<Fixed>,
    ask_size: Option<Fixed>,
}

/// `spread`: the latest bid/ask and the average spread over a window.
#[derive(Debug, Clone)]
pub struct Spread {
    window: u64,
    sums: SumWindow<SpreadSums>,
    clock: Clock,
    top: Option<Top>,
}

impl Spread {
    #[inline]
    fn add(&mut self, q: &Quote<'_>, rx: u64) -> Effect {
        let Some((bid, ask, _)) = mid_of(q) else {
            return Effect::Unreadable;
        };
        let now = self.clock.at(rx);
        self.sums.push(
            now,
            SpreadSums {
                spread: ask - bid,
                quotes: 1,
            },
        );
        self.top = Some(Top {
            bid,
            ask,
            bid_size: q.bid_size.text().and_then(fixed::parse),
            ask_size: q.ask_size.text().and_then(fixed::parse),
        });
        Effect::Used
    }

    fn value(&self, field: &str) -> Value {
        let s = self.sums.total();
        let top = self.top;
        match field {
            "window" => secs(self.window),
            "bid" => dec(top.map(|t| t.bid)),
            "ask" => dec(top.map(|t| t.ask)),
            "bid_size" => dec(top.and_then(|t| t.bid_size)),
            "ask_size" => dec(top.and_then(|t| t.ask_size)),
            "spread" => dec(top.map(|t| t.ask - t.bid)),
            "spread_pct" => top
                .and_then(|t| ratio(t.ask - t.bid, (t.ask + t.bid) / 2))
                .map_or(Value::Null, Value::Float),
            "avg_spread" => {
                #[allow(clippy::cast_precision_loss)]
                let v = (s.quotes > 0).then(|| fixed::to_f64(s.spread) / s.quotes as f64);
                v.map_or(Value::Null, Value::Float)
            }
            "quotes" => int(s.quotes),
            _ => Value::Null,
        }
    }
}

/// Where a market is in its life, from the venue's lifecycle events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Open,
    Close,
    Settle,
    Other,
}

impl Phase {
    /// Kalshi `activated`, Polymarket `new_market` → open; Kalshi
    /// `deactivated` → close (trading stops); Kalshi `determined`,
    /// `settled`, Polymarket `market_resolved` → settle; any other event
    /// (created, close_date_updated, metadata and fee updates, tick size
    /// changes) → other.
    pub fn of(event: &[u8]) -> Phase {
        match event {
            b"activated" | b"new_market" => Phase::Open,
            b"deactivated" => Phase::Close,
            b"determined" | b"settled" | b"market_resolved" => Phase::Settle,
            _ => Phase::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Open => "open",
            Phase::Close => "close",
            Phase::Settle => "settle",
            Phase::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Some(match s {
            "open" => Phase::Open,
            "close" => Phase::Close,
            "settle" => Phase::Settle,
            "other" => Phase::Other,
            _ => return None,
        })
    }
}

/// `lifecycle`: the last event and when the phase last changed (times in ns).
#[derive(Debug, Clone, Default)]
pub struct LifecycleState {
    event: Option<String>,
    phase: Option<Phase>,
    ts: Option<i64>,
    rx: Option<u64>,
    changed_rx: Option<u64>,
    events: u64,
}

impl LifecycleState {
    fn add(&mut self, l: &Lifecycle<'_>, rx: u64) -> Effect {
        let Some(ev) = l.event.text() else {
            return Effect::Unreadable;
        };
        let phase = Phase::of(ev);
        if self.phase != Some(phase) {
            self.changed_rx = Some(rx);
        }
        self.phase = Some(phase);
        self.event = Some(String::from_utf8_lossy(ev).into_owned());
        self.ts = l.ts.map(super::ms_to_ns);
        self.rx = Some(rx);
        self.events += 1;
        Effect::Used
    }

    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }

    fn value(&self, field: &str) -> Value {
        match field {
            "event" => self.event.clone().map_or(Value::Null, Value::Str),
            "phase" => self
                .phase
                .map_or(Value::Null, |p| Value::Str(p.as_str().into())),
            "ts" => self.ts.map_or(Value::Null, Value::Int),
            "rx" => self.rx.map_or(Value::Null, int),
            "changed_rx" => self.changed_rx.map_or(Value::Null, int),
            "events" => int(self.events),
            _ => Value::Null,
        }
    }
}
