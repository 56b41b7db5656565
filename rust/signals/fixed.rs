//! Exact decimal arithmetic for the state builders: prices, sizes and
//! dollar amounts as `i128` fixed point with 18 decimals ([`Fixed`]).
//!
//! Sums over a sliding window add a value when a trade enters and subtract
//! it when it leaves; with floats the two would not cancel and a threshold
//! at exactly $1,000,000 would depend on the order of the trades. With
//! fixed point they cancel exactly. 18 decimals hold any product of two
//! venue decimals of up to 9 decimals each without rounding (Kraken: 8 × 8);
//! an `i128` then holds up to about 1.7e20, far beyond any window's dollars.
use crate::decimal::Dec;
use crate::model::Venue;
use crate::records::Trade;

/// Decimals of a [`Fixed`].
pub const SCALE: u32 = 18;
/// `10^SCALE`.
pub const ONE: i128 = 1_000_000_000_000_000_000;

/// A decimal value times `10^18`.
pub type Fixed = i128;

/// `10^n` for `n <= 38`.
fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// Parse decimal text into `(mantissa, scale)`: `"0.4500"` → `(4500, 4)`.
/// Exponents (`1e-5`) are accepted; anything else that is not a plain
/// decimal number gives `None`.
pub fn parse_parts(t: &[u8]) -> Option<(i128, u32)> {
    let (neg, digits) = match t.first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let mut m: i128 = 0;
    let mut scale = 0u32;
    let mut seen_point = false;
    let mut any = false;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                m = m.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
                any = true;
                if seen_point {
                    scale += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' => return slow_parts(t),
            _ => return None,
        }
    }
    if !any {
        return None;
    }
    Some((if neg { -m } else { m }, scale))
}

#[cold]
fn slow_parts(t: &[u8]) -> Option<(i128, u32)> {
    let d = Dec::parse(t)?;
    let scale = u32::try_from(d.frac.len()).ok()?;
    Some((d.scaled(scale)?, scale))
}

/// Rescale `m × 10^-scale` to [`Fixed`] (truncating digits beyond 18).
pub fn rescale(m: i128, scale: u32) -> Option<Fixed> {
    if scale <= SCALE {
        m.checked_mul(pow10(SCALE - scale)?)
    } else {
        Some(m / pow10(scale - SCALE)?)
    }
}

/// Decimal text as [`Fixed`].
pub fn parse(t: &[u8]) -> Option<Fixed> {
    let (m, s) = parse_parts(t)?;
    rescale(m, s)
}

/// `a × b` of two decimal texts, exactly (to 18 decimals).
pub fn product(a: &[u8], b: &[u8]) -> Option<Fixed> {
    let (ma, sa) = parse_parts(a)?;
    let (mb, sb) = parse_parts(b)?;
    rescale(ma.checked_mul(mb)?, sa + sb)
}

/// A [`Fixed`] as a float (for views and ratios).
#[allow(clippy::cast_precision_loss)]
pub fn to_f64(v: Fixed) -> f64 {
    // split so that large values keep their integer part exactly
    let int = v / ONE;
    let frac = v % ONE;
    int as f64 + frac as f64 / ONE as f64
}

/// A [`Fixed`] as plain decimal text without trailing zeros: `1000000.5`.
pub fn to_text(v: Fixed) -> String {
    let neg = v < 0;
    let u = v.unsigned_abs();
    let one = ONE.unsigned_abs();
    let int = u / one;
    let mut frac = format!("{:018}", u % one);
    while frac.ends_with('0') {
        frac.pop();
    }
    let sign = if neg { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// Why a trade adds nothing to a dollar volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoDollars {
    /// Kraken or Kraken Futures instrument not quoted in USD.
    NotUsd,
    /// Price or size missing or not a decimal.
    Unreadable,
}

/// The quote currency of a Kraken Futures product is USD: `PF_XBTUSD`,
/// `FF_XBTUSD_240329`, `PI_ETHUSD`.
fn futures_usd(id: &[u8]) -> bool {
    let pair = id.get(3..).unwrap_or_default();
    let pair = match pair.iter().position(|&b| b == b'_') {
        Some(p) => &pair[..p],
        None => pair,
    };
    pair.len() > 3 && pair.ends_with(b"USD")
}

/// Inverse Kraken Futures contracts (`PI_`, `FI_`) are sized in USD.
fn futures_inverse(id: &[u8]) -> bool {
    id.starts_with(b"PI_") || id.starts_with(b"FI_")
}

/// Dollar value of one trade, per venue (docs/signals.md, "Dollar volume"):
///
/// - Kalshi: contracts × the YES price in dollars, whatever the taker side
///   (the normalized price is always the YES price);
/// - Polymarket: size × price;
/// - Kraken spot: quantity × price when the pair is quoted in USD
///   (`…/USD`); other pairs are skipped;
/// - Kraken Futures: quantity × price for USD-quoted linear contracts
///   (`PF_…USD`, `FF_…USD_…`); inverse contracts (`PI_`, `FI_`) are sized
///   in USD already, so their dollar value is the quantity; others are
///   skipped.
pub fn dollars(t: &Trade<'_>) -> Result<Fixed, NoDollars> {
    let (Some(price), Some(size)) = (t.price.text(), t.size.text()) else {
        return Err(NoDollars::Unreadable);
    };
    let price = parse_parts(price).ok_or(NoDollars::Unreadable)?;
    let size = parse_parts(size).ok_or(NoDollars::Unreadable)?;
    dollars_of(t, price, size)
}

/// [`dollars`] of a trade whose price and size are already parsed
/// ([`parse_parts`]).
pub fn dollars_of(
    t: &Trade<'_>,
    price: (i128, u32),
    size: (i128, u32),
) -> Result<Fixed, NoDollars> {
    match t.venue {
        Venue::Kalshi | Venue::Polymarket => {}
        Venue::Kraken => {
            if !t.instrument.text().is_some_and(|i| i.ends_with(b"/USD")) {
                return Err(NoDollars::NotUsd);
            }
        }
        Venue::KrakenFutures => {
            let id = t.instrument.text().unwrap_or_default();
            if !futures_usd(id) {
                return Err(NoDollars::NotUsd);
            }
            if futures_inverse(id) {
                return rescale(size.0, size.1).ok_or(NoDollars::Unreadable);
            }
        }
    }
    size.0
        .checked_mul(price.0)
        .and_then(|m| rescale(m, price.1 + size.1))
        .ok_or(NoDollars::Unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Text;

    fn trade<'a>(venue: Venue, inst: &'a [u8], price: &'a [u8], size: &'a [u8]) -> Trade<'a> {
        Trade {
            venue,
            instrument: Text::Num(inst),
            ts: None,
            seq: None,
            price: Text::Num(price),
            size: Text::Num(size),
            side: None,
            trade_id: Text::Null,
        }
    }

    #[test]
    fn parses_decimal_text() {
        assert_eq!(parse(b"0.4500"), Some(ONE * 45 / 100));
        assert_eq!(parse(b".48"), Some(ONE * 48 / 100));
        assert_eq!(parse(b"-12.5"), Some(-ONE * 25 / 2));
        assert_eq!(parse(b"7"), Some(7 * ONE));
        assert_eq!(parse(b"1e-5"), Some(ONE / 100_000));
        assert_eq!(parse(b"2E+3"), Some(2000 * ONE));
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"."), None);
        assert_eq!(parse(b"1.2.3"), None);
        assert_eq!(parse(b"abc"), None);
        assert_eq!(parse(b"NaN"), None);
        // beyond 18 decimals: truncated
        assert_eq!(parse(b"0.0000000000000000019"), Some(1));
    }

    #[test]
    fn products_are_exact() {
        // Kraken: 8 decimals × 8 decimals, no rounding
        assert_eq!(
            to_text(product(b"84000.12345678", b"0.00044780").unwrap()),
            "37.615255283946084"
        );
        assert_eq!(to_text(product(b"0.55", b"10.00").unwrap()), "5.5");
        assert_eq!(to_text(product(b"-2", b"3").unwrap()), "-6");
        assert_eq!(product(b"x", b"1"), None);
    }

    #[test]
    fn text_and_float_views() {
        assert_eq!(to_text(0), "0");
        assert_eq!(to_text(ONE * 1_000_000), "1000000");
        assert_eq!(to_text(-ONE / 2), "-0.5");
        assert!((to_f64(ONE * 3 / 2) - 1.5).abs() < 1e-15);
        assert!((to_f64(ONE * 123_456_789_012) - 123_456_789_012.0).abs() < 1e-3);
    }

    #[test]
    fn dollar_volume_per_venue() {
        let k = trade(Venue::Kalshi, b"KX-1", b"0.5500", b"10.00");
        assert_eq!(dollars(&k).map(to_text), Ok("5.5".into()));
        let p = trade(Venue::Polymarket, b"123", b".48", b"100");
        assert_eq!(dollars(&p).map(to_text), Ok("48".into()));
        let usd = trade(Venue::Kraken, b"BTC/USD", b"84000.1", b"0.5");
        assert_eq!(dollars(&usd).map(to_text), Ok("42000.05".into()));
        let eur = trade(Venue::Kraken, b"BTC/EUR", b"80000", b"1");
        assert_eq!(dollars(&eur), Err(NoDollars::NotUsd));
        let usdt = trade(Venue::Kraken, b"BTC/USDT", b"80000", b"1");
        assert_eq!(dollars(&usdt), Err(NoDollars::NotUsd));
        let pf = trade(Venue::KrakenFutures, b"PF_XBTUSD", b"84000", b"0.25");
        assert_eq!(dollars(&pf).map(to_text), Ok("21000".into()));
        let ff = trade(Venue::KrakenFutures, b"FF_ETHUSD_240329", b"3000", b"2");
        assert_eq!(dollars(&ff).map(to_text), Ok("6000".into()));
        let pi = trade(Venue::KrakenFutures, b"PI_XBTUSD", b"84000", b"5000");
        assert_eq!(dollars(&pi).map(to_text), Ok("5000".into()));
        let eurf = trade(Venue::KrakenFutures, b"PF_XBTEUR", b"80000", b"1");
        assert_eq!(dollars(&eurf), Err(NoDollars::NotUsd));
        let bad = trade(Venue::Polymarket, b"1", b"?", b"1");
        assert_eq!(dollars(&bad), Err(NoDollars::Unreadable));
    }
}
