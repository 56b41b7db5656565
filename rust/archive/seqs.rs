//! The stream sequences of one file, for `ssmd archive verify`: runs of
//! consecutive `M`, resets and duplicates (docs/bus.md: `"seq":M` or
//! `"seq":[M,i]`, line `i` of bus message `M`).
//!
//! Fast mode (the normal case: the archiver writes in stream order) keeps
//! only the runs of consecutive `M` and fails at the first key that is not
//! larger than the one before it; the caller then scans the file again in
//! collect mode, which keeps every key to sort out resets (a key below
//! every one before it starts a new segment) and duplicates (the same key
//! twice within a segment).
use super::line::Seq;

/// A key as two integers ordered like [`Seq`]: `(M, 0)` for a plain `M`,
/// `(M, i + 1)` for `[M, i]`.
type Key = (u64, u64);

fn key(s: Seq) -> Key {
    (s.stream, s.index.map_or(0, |i| i + 1))
}

fn seq(k: Key) -> Seq {
    Seq {
        stream: k.0,
        index: k.1.checked_sub(1),
    }
}

/// The line index of a key, `None` for a plain `M`.
fn idx(k: Key) -> Option<u64> {
    k.1.checked_sub(1)
}

/// Sequences of one file, or of the part of it after a reset inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Disjoint `[lo, hi]` ranges of the distinct `M`, ascending.
    pub runs: Vec<(u64, u64)>,
    pub first_m: u64,
    pub last_m: u64,
    /// Line indexes carried by `first_m` / `last_m` (`None`: a plain `M`),
    /// sorted, distinct.
    pub first_idx: Vec<Option<u64>>,
    pub last_idx: Vec<Option<u64>>,
    pub first_key: Seq,
    pub last_key: Seq,
}

impl Segment {
    fn start(k: Key) -> Segment {
        Segment {
            runs: vec![(k.0, k.0)],
            first_m: k.0,
            last_m: k.0,
            first_idx: vec![idx(k)],
            last_idx: vec![idx(k)],
            first_key: seq(k),
            last_key: seq(k),
        }
    }

    fn tidy(mut self) -> Segment {
        for v in [&mut self.first_idx, &mut self.last_idx] {
            v.sort_unstable();
            v.dedup();
        }
        self
    }
}

/// Collects a file's `seq` values (see the module comment).
#[derive(Debug, Default)]
pub struct SeqScan {
    collect: bool,
    failed: bool,
    seg: Option<Segment>,
    last: Key,
    keys: Vec<Key>,
}

impl SeqScan {
    /// A scan in fast mode, or in collect mode.
    pub fn new(collect: bool) -> SeqScan {
        SeqScan {
            collect,
            ..SeqScan::default()
        }
    }

    /// True when fast mode met a key not larger than the one before it:
    /// scan again in collect mode.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The next line's sequence, in file order.
    pub fn add(&mut self, s: Seq) {
        let k = key(s);
        if self.collect {
            self.keys.push(k);
            return;
        }
        if self.failed {
            return;
        }
        let Some(seg) = self.seg.as_mut() else {
            self.seg = Some(Segment::start(k));
            self.last = k;
            return;
        };
        if k <= self.last {
            self.failed = true;
            return;
        }
        let m = k.0;
        if m == seg.last_m {
            seg.last_idx.push(idx(k));
            if m == seg.first_m {
                seg.first_idx.push(idx(k));
            }
        } else {
            let run = seg.runs.last_mut().expect("a segment has a run");
            if m == run.1 + 1 {
                run.1 = m;
            } else {
                seg.runs.push((m, m));
            }
            seg.last_m = m;
            seg.last_idx = vec![idx(k)];
        }
        seg.last_key = s;
        self.last = k;
    }

    /// The file's segments and its duplicated `M` ranges (collect mode
    /// only; fast mode finds none, or fails).
    pub fn finish(self) -> (Vec<Segment>, Vec<(u64, u64)>) {
        if !self.collect {
            return (
                self.seg.into_iter().map(Segment::tidy).collect(),
                Vec::new(),
            );
        }
        let keys = self.keys;
        // A new segment starts where M drops below every M before it.
        let mut cuts = vec![0];
        let mut low = u64::MAX;
        for (i, k) in keys.iter().enumerate() {
            if i > 0 && k.0 < low {
                cuts.push(i);
            }
            low = low.min(k.0);
        }
        cuts.push(keys.len());
        let mut segments = Vec::new();
        let mut dups = Vec::new();
        for w in cuts.windows(2) {
            let mut part = keys[w[0]..w[1]].to_vec();
            if part.is_empty() {
                continue;
            }
            part.sort_unstable();
            dups.extend(part.windows(2).filter(|p| p[0] == p[1]).map(|p| p[0].0));
            let first_m = part[0].0;
            let last_m = part[part.len() - 1].0;
            let mut runs: Vec<(u64, u64)> = Vec::new();
            for k in &part {
                match runs.last_mut() {
                    Some(r) if k.0 <= r.1 + 1 => r.1 = r.1.max(k.0),
                    _ => runs.push((k.0, k.0)),
                }
            }
            let seg = Segment {
                runs,
                first_m,
                last_m,
                first_idx: part
                    .iter()
                    .take_while(|k| k.0 == first_m)
                    .map(|&k| idx(k))
                    .collect(),
                last_idx: part
                    .iter()
                    .rev()
                    .take_while(|k| k.0 == last_m)
                    .map(|&k| idx(k))
                    .collect(),
                first_key: seq(part[0]),
                last_key: seq(part[part.len() - 1]),
            };
            segments.push(seg.tidy());
        }
        dups.sort_unstable();
        dups.dedup();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for m in dups {
            match ranges.last_mut() {
                Some(r) if m == r.1 + 1 => r.1 = m,
                _ => ranges.push((m, m)),
            }
        }
        (segments, ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(m: u64) -> Seq {
        Seq {
            stream: m,
            index: None,
        }
    }

    fn at(m: u64, i: u64) -> Seq {
        Seq {
            stream: m,
            index: Some(i),
        }
    }

    fn scan(keys: &[Seq], collect: bool) -> (bool, Vec<Segment>, Vec<(u64, u64)>) {
        let mut s = SeqScan::new(collect);
        for &k in keys {
            s.add(k);
        }
        let failed = s.failed();
        let (segs, dups) = s.finish();
        (failed, segs, dups)
    }

    #[test]
    fn in_order_runs_and_split_batches() {
        let keys = [
            at(5, 1),
            at(5, 2),
            plain(6),
            plain(7),
            plain(9),
            at(10, 0),
            at(10, 1),
        ];
        let (failed, segs, dups) = scan(&keys, false);
        assert!(!failed && dups.is_empty());
        let s = &segs[0];
        assert_eq!(s.runs, [(5, 7), (9, 10)]);
        assert_eq!((s.first_m, s.last_m), (5, 10));
        assert_eq!(s.first_idx, [Some(1), Some(2)]);
        assert_eq!(s.last_idx, [Some(0), Some(1)]);
        assert_eq!((s.first_key, s.last_key), (at(5, 1), at(10, 1)));
        // Collect mode finds the same.
        let (_, again, _) = scan(&keys, true);
        assert_eq!(again, segs);
    }

    #[test]
    fn disorder_resets_and_duplicates() {
        let keys = [
            plain(10),
            plain(12),
            plain(11),
            plain(12),
            plain(3),
            plain(4),
            plain(4),
        ];
        let (failed, _, _) = scan(&keys, false);
        assert!(failed);
        let (_, segs, dups) = scan(&keys, true);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].runs, [(10, 12)]);
        assert_eq!(segs[1].runs, [(3, 4)]);
        assert_eq!(segs[1].first_idx, [None]);
        assert_eq!(dups, [(4, 4), (12, 12)]);
    }
}
