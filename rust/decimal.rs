//! Exact decimal text handling: no floats anywhere on prices or sizes.
//!
//! Prices arrive as JSON numbers (Kraken), decimal strings (Kalshi,
//! Polymarket, with or without a leading zero) or integer cents (legacy
//! Kalshi). These helpers compare, reformat and do the little arithmetic the
//! normalizer needs (`1 - p` for Kalshi NO bids) on the text itself.

use std::cmp::Ordering;

/// A decimal split into sign, integer digits and fraction digits, with
/// any exponent applied. Digits are ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dec {
    pub neg: bool,
    pub int: Vec<u8>,
    pub frac: Vec<u8>,
}

impl Dec {
    /// Parse JSON-number-like text: `-12.50`, `.48`, `1e-5`, `7E+2`.
    pub fn parse(t: &[u8]) -> Option<Dec> {
        let (neg, t) = match t.first()? {
            b'-' => (true, &t[1..]),
            b'+' => (false, &t[1..]),
            _ => (false, t),
        };
        let (mant, exp) = match t.iter().position(|&b| b == b'e' || b == b'E') {
            Some(p) => {
                let e = std::str::from_utf8(&t[p + 1..]).ok()?.parse::<i32>().ok()?;
                (&t[..p], e)
            }
            None => (t, 0),
        };
        if !(-400..=400).contains(&exp) {
            return None;
        }
        let (ip, fp) = match mant.iter().position(|&b| b == b'.') {
            Some(p) => (&mant[..p], &mant[p + 1..]),
            None => (mant, &b""[..]),
        };
        if ip.is_empty() && fp.is_empty() {
            return None;
        }
        if !ip.iter().chain(fp).all(u8::is_ascii_digit) {
            return None;
        }
        let mut digits: Vec<u8> = ip.iter().chain(fp).copied().collect();
        let mut point = i64::try_from(ip.len()).ok()? + i64::from(exp);
        if point < 0 {
            let pad = usize::try_from(-point).ok()?;
            let mut d = vec![b'0'; pad];
            d.extend_from_slice(&digits);
            digits = d;
            point = 0;
        }
        let point = usize::try_from(point).ok()?;
        if point > digits.len() {
            digits.resize(point, b'0');
        }
        let mut int: Vec<u8> = digits[..point].to_vec();
        let frac = digits[point..].to_vec();
        while int.len() > 1 && int[0] == b'0' {
            int.remove(0);
        }
        if int.is_empty() {
            int.push(b'0');
        }
        Some(Dec { neg, int, frac })
    }

    /// The fraction with trailing zeros removed.
    fn frac_trimmed(&self) -> &[u8] {
        let mut n = self.frac.len();
        while n > 0 && self.frac[n - 1] == b'0' {
            n -= 1;
        }
        &self.frac[..n]
    }

    pub fn is_zero(&self) -> bool {
        self.int.iter().chain(&self.frac).all(|&b| b == b'0')
    }

    /// Number of significant fraction digits (trailing zeros ignored).
    pub fn scale(&self) -> u32 {
        u32::try_from(self.frac_trimmed().len()).unwrap_or(u32::MAX)
    }

    /// Text with exactly `prec` fraction digits (truncating extra digits).
    pub fn fixed(&self, prec: usize) -> String {
        let mut s = String::with_capacity(self.int.len() + prec + 2);
        if self.neg && !self.is_zero() {
            s.push('-');
        }
        s.push_str(std::str::from_utf8(&self.int).unwrap_or("0"));
        if prec > 0 {
            s.push('.');
            for i in 0..prec {
                s.push(char::from(*self.frac.get(i).unwrap_or(&b'0')));
            }
        }
        s
    }

    /// Scaled integer `value * 10^scale` (truncated), if it fits.
    pub fn scaled(&self, scale: u32) -> Option<i128> {
        let mut v: i128 = 0;
        for &d in &self.int {
            v = v.checked_mul(10)?.checked_add(i128::from(d - b'0'))?;
        }
        for i in 0..scale as usize {
            let d = self.frac.get(i).copied().unwrap_or(b'0');
            v = v.checked_mul(10)?.checked_add(i128::from(d - b'0'))?;
        }
        Some(if self.neg { -v } else { v })
    }
}

/// Compare two decimal texts numerically; unparsable text sorts last.
pub fn cmp(a: &[u8], b: &[u8]) -> Ordering {
    match (Dec::parse(a), Dec::parse(b)) {
        (Some(x), Some(y)) => cmp_dec(&x, &y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn cmp_dec(x: &Dec, y: &Dec) -> Ordering {
    let xz = x.is_zero();
    let yz = y.is_zero();
    let xn = x.neg && !xz;
    let yn = y.neg && !yz;
    match (xn, yn) {
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let mag = x
        .int
        .len()
        .cmp(&y.int.len())
        .then_with(|| x.int.cmp(&y.int))
        .then_with(|| {
            let n = x.frac.len().max(y.frac.len());
            for i in 0..n {
                let a = x.frac.get(i).copied().unwrap_or(b'0');
                let b = y.frac.get(i).copied().unwrap_or(b'0');
                if a != b {
                    return a.cmp(&b);
                }
            }
            Ordering::Equal
        });
    if xn {
        mag.reverse()
    } else {
        mag
    }
}

/// Split plain unsigned decimal text (`12.50`, `.48`, `7`) into integer and
/// fraction digits without allocating; `None` for signs, exponents, junk.
#[inline]
pub fn plain(t: &[u8]) -> Option<(&[u8], &[u8])> {
    let (ip, fp) = match t.iter().position(|&b| b == b'.') {
        Some(p) => (&t[..p], &t[p + 1..]),
        None => (t, &b""[..]),
    };
    if (ip.is_empty() && fp.is_empty()) || !ip.iter().chain(fp).all(u8::is_ascii_digit) {
        return None;
    }
    Some((ip, fp))
}

/// Facts a book needs about a level number: sort key (value × 10^18),
/// significant fraction digits, and whether it is zero.
pub fn level_facts(t: &[u8]) -> Option<(i128, u32, bool)> {
    if let Some((ip, fp)) = plain(t) {
        if ip.len() <= 20 && fp.len() <= 18 {
            let mut v: i128 = 0;
            for &d in ip {
                v = v * 10 + i128::from(d - b'0');
            }
            for i in 0..18 {
                v = v * 10 + i128::from(fp.get(i).map_or(0, |&d| d - b'0'));
            }
            let scale = fp.iter().rposition(|&d| d != b'0').map_or(0, |p| p + 1);
            return Some((v, u32::try_from(scale).unwrap_or(0), v == 0));
        }
    }
    let d = Dec::parse(t)?;
    Some((d.scaled(18)?, d.scale(), d.is_zero()))
}

/// A sort key for price levels: value scaled by 10^18.
pub fn key(t: &[u8]) -> Option<i128> {
    level_facts(t).map(|f| f.0)
}

/// Kraken checksum field: fixed to `prec` decimals, point removed, leading
/// zeros removed (`0.00100000` at 8 → `100000`).
pub fn checksum_digits(t: &[u8], prec: u32, out: &mut Vec<u8>) -> bool {
    if let Some((ip, fp)) = plain(t) {
        let start = out.len();
        for &b in ip {
            if !(b == b'0' && out.len() == start) {
                out.push(b);
            }
        }
        for i in 0..prec as usize {
            let b = fp.get(i).copied().unwrap_or(b'0');
            if !(b == b'0' && out.len() == start) {
                out.push(b);
            }
        }
        return true;
    }
    let Some(d) = Dec::parse(t) else {
        return false;
    };
    let fixed = d.fixed(prec as usize);
    let start = out.len();
    for &b in fixed.as_bytes() {
        if b == b'.' || b == b'-' || (b == b'0' && out.len() == start) {
            continue;
        }
        out.push(b);
    }
    true
}

/// Integer cents to dollar text with 4 decimals: `55` → `0.5500`.
pub fn cents_to_dollars(cents: i64) -> String {
    let neg = cents < 0;
    let c = cents.unsigned_abs();
    format!("{}{}.{:02}00", if neg { "-" } else { "" }, c / 100, c % 100)
}

/// Integer contract count to fixed-point text with 2 decimals: `10` → `10.00`.
pub fn count_fp(count: i64) -> String {
    format!("{count}.00")
}

/// `1 - p` for a dollar price text, keeping `p`'s number of decimals.
pub fn one_minus(p: &[u8]) -> Option<String> {
    let d = Dec::parse(p)?;
    let scale = u32::try_from(d.frac.len()).ok()?;
    let v = d.scaled(scale)?;
    let one = 10i128.checked_pow(scale)?;
    let r = one - v;
    let neg = r < 0;
    let r = r.unsigned_abs();
    let div = 10u128.pow(scale);
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    s.push_str(&(r / div).to_string());
    if scale > 0 {
        s.push('.');
        s.push_str(&format!("{:0width$}", r % div, width = scale as usize));
    }
    Some(s)
}

/// Parse an RFC 3339 UTC timestamp (`2023-09-25T09:04:31.742648Z`) to ms.
pub fn rfc3339_ms(t: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(t).ok()?;
    if s.len() < 20 {
        return None;
    }
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, se) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let rest = &s[19..];
    let (frac, tz) = if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        (&r[..n], &r[n..])
    } else {
        ("", rest)
    };
    let mut ms = 0i64;
    for (i, c) in frac.bytes().take(3).enumerate() {
        ms += i64::from(c - b'0') * [100, 10, 1][i];
    }
    let offset_min = match tz {
        "Z" | "z" | "+00:00" => 0,
        _ if tz.len() == 6 => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (tz.get(1..3)?.parse::<i64>().ok()? * 60 + tz.get(4..6)?.parse::<i64>().ok()?)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) - offset_min * 60) * 1000 + ms)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(Dec::parse(b".48").unwrap().fixed(4), "0.4800");
        assert_eq!(Dec::parse(b"0.566").unwrap().fixed(4), "0.5660");
        assert_eq!(Dec::parse(b"1e-5").unwrap().fixed(8), "0.00001000");
        assert_eq!(Dec::parse(b"2.5E+3").unwrap().fixed(1), "2500.0");
        assert_eq!(Dec::parse(b"-0.0").unwrap().fixed(2), "0.00");
        assert_eq!(Dec::parse(b"45283.5").unwrap().scale(), 1);
        assert_eq!(Dec::parse(b"0.10000000").unwrap().scale(), 1);
        assert!(Dec::parse(b"abc").is_none());
        assert!(Dec::parse(b"").is_none());
    }

    #[test]
    fn checksum_field_format() {
        let mut out = Vec::new();
        assert!(checksum_digits(b"45285.2", 1, &mut out));
        assert!(checksum_digits(b"0.00100000", 8, &mut out));
        assert_eq!(out, b"452852100000");
        let mut out = Vec::new();
        checksum_digits(b"0.566", 4, &mut out);
        assert_eq!(out, b"5660");
    }

    #[test]
    fn compares_numerically() {
        assert_eq!(cmp(b".48", b"0.5"), Ordering::Less);
        assert_eq!(cmp(b"10", b"9.99"), Ordering::Greater);
        assert_eq!(cmp(b"0.50", b".5"), Ordering::Equal);
        assert_eq!(cmp(b"-1", b"0"), Ordering::Less);
    }

    #[test]
    fn kalshi_arithmetic() {
        assert_eq!(cents_to_dollars(55), "0.5500");
        assert_eq!(cents_to_dollars(100), "1.0000");
        assert_eq!(count_fp(10), "10.00");
        assert_eq!(one_minus(b"0.5400").unwrap(), "0.4600");
        assert_eq!(one_minus(b"0.53").unwrap(), "0.47");
        assert_eq!(one_minus(b"1.0000").unwrap(), "0.0000");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_ms(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms(b"2022-11-22T20:44:01Z"), Some(1_669_149_841_000));
        assert_eq!(
            rfc3339_ms(b"2023-09-25T09:04:31.742648Z"),
            Some(1_695_632_671_742)
        );
        assert_eq!(
            rfc3339_ms(b"2023-09-25T11:04:31.742+02:00"),
            Some(1_695_632_671_742)
        );
        assert_eq!(rfc3339_ms(b"garbage"), None);
    }
}
