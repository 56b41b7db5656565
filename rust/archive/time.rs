//! UTC calendar arithmetic for file names (no time-zone database needed).
use std::fmt;

const NS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: u64 = 86_400;

/// A UTC calendar date (`YYYY-MM-DD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// Parse `YYYY-MM-DD` (exactly that form, a real calendar date).
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = &s[r];
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        };
        let year = i32::try_from(num(0..4)?).ok()?;
        let month = u8::try_from(num(5..7)?).ok()?;
        let day = u8::try_from(num(8..10)?).ok()?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date { year, month, day })
    }

    /// The date of a count of days since 1970-01-01.
    pub fn from_days(days: i64) -> Date {
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Date {
            year: year as i32,
            month: month as u8,
            day: day as u8,
        }
    }

    /// Days since 1970-01-01.
    pub fn to_days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let m = i64::from(self.month);
        let d = i64::from(self.day);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// Nanoseconds since the epoch at 00:00 UTC of this date (0 before 1970).
    pub fn start_ns(self) -> u64 {
        u64::try_from(self.to_days()).map_or(0, |d| {
            d.saturating_mul(SECS_PER_DAY).saturating_mul(NS_PER_SEC)
        })
    }

    /// The next calendar day.
    pub fn succ(self) -> Date {
        Date::from_days(self.to_days() + 1)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Start (seconds since the epoch) of the rotation window holding `rx_ns`.
pub(crate) fn window_start(rx_ns: u64, rotation_secs: u64) -> u64 {
    let secs = rx_ns / NS_PER_SEC;
    secs - secs % rotation_secs
}

/// Date and `HHMM` of a window start.
pub(crate) fn window_date_hhmm(start_secs: u64) -> (Date, String) {
    let days = start_secs / SECS_PER_DAY;
    let sod = start_secs % SECS_PER_DAY;
    let date = Date::from_days(i64::try_from(days).unwrap_or(i64::MAX / 2));
    (date, format!("{:02}{:02}", sod / 3600, (sod % 3600) / 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-1000_i64, -1, 0, 1, 59, 365, 10_957, 19_000, 20_000, 50_000] {
            assert_eq!(Date::from_days(days).to_days(), days);
        }
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_days(19_783).to_string(), "2024-03-01");
        assert_eq!(Date::parse("2024-02-29").unwrap().to_days(), 19_782);
        assert!(Date::parse("2023-02-29").is_none());
        assert!(Date::parse("2024-13-01").is_none());
        assert!(Date::parse("2024-1-01").is_none());
        assert!(Date::parse("+024-01-01").is_none());
        assert_eq!(
            Date::parse("2024-12-31").unwrap().succ().to_string(),
            "2025-01-01"
        );
    }

    #[test]
    fn windows() {
        // 2024-03-01T13:47:12.5Z
        let rx = (19_783 * 86_400 + 13 * 3600 + 47 * 60 + 12) * NS_PER_SEC + 500_000_000;
        let w = window_start(rx, 900);
        let (d, hhmm) = window_date_hhmm(w);
        assert_eq!(
            (d.to_string().as_str(), hhmm.as_str()),
            ("2024-03-01", "1345")
        );
        let (_, hhmm) = window_date_hhmm(window_start(rx, 3600));
        assert_eq!(hhmm, "1300");
    }
}
