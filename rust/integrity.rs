//! Integrity checks: sequence tracking (Kalshi `seq` per `sid`, Kraken
//! Futures `seq` per product) and the Kraken spot v2 book with its CRC32.

use std::collections::{BTreeMap, BTreeSet};

use crate::decimal;

/// How many missing sequence numbers are remembered per stream, so that a
/// late (reordered) message is told apart from a duplicate.
pub const MAX_REMEMBERED_MISSING: usize = 4096;

/// Verdict on one sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// First number seen on this stream.
    First,
    InOrder,
    /// Numbers between `expected` and `got` (exclusive) never arrived.
    Gap {
        expected: u64,
        got: u64,
    },
    /// A number reported missing earlier arrived after all.
    Late,
    /// Seen before: a re-sent copy.
    Duplicate,
    /// Replay mode: the number went back, taken as a new connection's
    /// sequence (the tracker restarted from it).
    Restart {
        last: u64,
    },
}

/// Sequence state of one stream (one Kalshi `sid`, one futures product feed).
#[derive(Debug, Default, Clone)]
pub struct SeqTracker {
    last: Option<u64>,
    missing: BTreeSet<u64>,
}

impl SeqTracker {
    /// Like [`Self::check`], but in `replay` mode a number that goes back
    /// (and was not reported missing) restarts the stream instead of being a
    /// duplicate: recorded captures carry no reconnect markers, and venue
    /// sequences restart on every connection.
    pub fn check_mode(&mut self, seq: u64, replay: bool) -> SeqCheck {
        match self.check(seq) {
            SeqCheck::Duplicate if replay => {
                let last = self.last.unwrap_or(0);
                self.reset_to(seq);
                SeqCheck::Restart { last }
            }
            v => v,
        }
    }

    pub fn check(&mut self, seq: u64) -> SeqCheck {
        let Some(last) = self.last else {
            self.last = Some(seq);
            return SeqCheck::First;
        };
        if seq == last.wrapping_add(1) {
            self.last = Some(seq);
            SeqCheck::InOrder
        } else if seq > last {
            let expected = last + 1;
            // remember the hole (bounded) so a late arrival is recognised
            if seq - expected <= MAX_REMEMBERED_MISSING as u64 {
                self.missing.extend(expected..seq);
            }
            while self.missing.len() > MAX_REMEMBERED_MISSING {
                self.missing.pop_first();
            }
            self.last = Some(seq);
            SeqCheck::Gap { expected, got: seq }
        } else if self.missing.remove(&seq) {
            SeqCheck::Late
        } else {
            SeqCheck::Duplicate
        }
    }

    /// Restart tracking (a new snapshot, a resubscribe).
    pub fn reset_to(&mut self, seq: u64) {
        self.last = Some(seq);
        self.missing.clear();
    }
}

/// Book side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Bid,
    Ask,
}

#[derive(Debug, Clone)]
struct Level {
    price: Vec<u8>,
    qty: Vec<u8>,
    /// Checksum text of this level for the precisions it was built with.
    digits: Option<(u32, u32, Vec<u8>)>,
}

/// A Kraken spot v2 L2 book kept only to verify checksums.
#[derive(Debug, Default, Clone)]
pub struct KrakenBook {
    bids: BTreeMap<i128, Level>,
    asks: BTreeMap<i128, Level>,
    /// Largest number of price / qty decimals seen on the wire.
    pub seen_price_scale: u32,
    pub seen_qty_scale: u32,
    /// False until a snapshot arrives, and after a mismatch.
    pub synced: bool,
}

impl KrakenBook {
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Set one level (`qty == 0` deletes it). False when the numbers do not parse.
    pub fn apply(&mut self, side: Side, price: &[u8], qty: &[u8]) -> bool {
        let (Some((key, p_scale, _)), Some((_, q_scale, q_zero))) =
            (decimal::level_facts(price), decimal::level_facts(qty))
        else {
            return false;
        };
        self.seen_price_scale = self.seen_price_scale.max(p_scale);
        self.seen_qty_scale = self.seen_qty_scale.max(q_scale);
        let book = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        if q_zero {
            book.remove(&key);
        } else {
            book.insert(
                key,
                Level {
                    price: price.to_vec(),
                    qty: qty.to_vec(),
                    digits: None,
                },
            );
        }
        true
    }

    /// Drop levels beyond `depth` on each side (no deletes are sent for them).
    pub fn truncate(&mut self, depth: usize) {
        while self.bids.len() > depth {
            self.bids.pop_first(); // lowest bid is the worst
        }
        while self.asks.len() > depth {
            self.asks.pop_last(); // highest ask is the worst
        }
    }

    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    /// CRC32 over the top 10 asks (ascending) then top 10 bids (descending),
    /// each level as price and qty fixed to the pair's precisions, point and
    /// leading zeros removed.
    pub fn checksum(&mut self, price_prec: u32, qty_prec: u32) -> u32 {
        // one contiguous buffer: crc32fast's fast path needs long inputs
        let mut all = Vec::with_capacity(512);
        for l in self
            .asks
            .values_mut()
            .take(10)
            .chain(self.bids.values_mut().rev().take(10))
        {
            match &l.digits {
                Some((pp, qp, d)) if *pp == price_prec && *qp == qty_prec => {
                    all.extend_from_slice(d)
                }
                _ => {
                    let mut d = Vec::with_capacity(24);
                    decimal::checksum_digits(&l.price, price_prec, &mut d);
                    decimal::checksum_digits(&l.qty, qty_prec, &mut d);
                    all.extend_from_slice(&d);
                    l.digits = Some((price_prec, qty_prec, d));
                }
            }
        }
        crc32fast::hash(&all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_in_order_gap_late_duplicate() {
        let mut t = SeqTracker::default();
        assert_eq!(t.check(5), SeqCheck::First);
        assert_eq!(t.check(6), SeqCheck::InOrder);
        assert_eq!(
            t.check(9),
            SeqCheck::Gap {
                expected: 7,
                got: 9
            }
        );
        assert_eq!(t.check(7), SeqCheck::Late);
        assert_eq!(t.check(7), SeqCheck::Duplicate);
        assert_eq!(t.check(6), SeqCheck::Duplicate);
        assert_eq!(t.check(10), SeqCheck::InOrder);
        assert_eq!(t.check(8), SeqCheck::Late);
    }

    #[test]
    fn replay_mode_restarts_instead_of_dropping() {
        let mut t = SeqTracker::default();
        t.check(500);
        assert_eq!(t.check_mode(501, true), SeqCheck::InOrder);
        assert_eq!(t.check_mode(1, true), SeqCheck::Restart { last: 501 });
        assert_eq!(t.check_mode(2, true), SeqCheck::InOrder);
        assert_eq!(t.check_mode(2, false), SeqCheck::Duplicate);
    }

    #[test]
    fn huge_gap_stays_bounded() {
        let mut t = SeqTracker::default();
        t.check(1);
        assert!(matches!(t.check(1_000_000_000), SeqCheck::Gap { .. }));
        assert!(t.missing.len() <= MAX_REMEMBERED_MISSING);
        assert_eq!(t.check(2), SeqCheck::Duplicate);
    }

    #[test]
    fn book_truncates_worst_levels() {
        let mut b = KrakenBook::default();
        for p in ["1.0", "2.0", "3.0"] {
            b.apply(Side::Bid, p.as_bytes(), b"1");
            b.apply(Side::Ask, format!("1{p}").as_bytes(), b"1");
        }
        b.truncate(2);
        assert_eq!(b.depth(), (2, 2));
        assert!(b.bids.contains_key(&decimal::key(b"3.0").unwrap()));
        assert!(b.asks.contains_key(&decimal::key(b"11.0").unwrap()));
        b.apply(Side::Bid, b"3.0", b"0");
        assert_eq!(b.depth(), (1, 2));
    }
}
