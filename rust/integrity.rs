//! Sequence tracking shared by the venues whose messages are numbered
//! (Kalshi `seq` per `sid`, Kraken Futures `seq` per product).

use std::collections::BTreeSet;

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
}
