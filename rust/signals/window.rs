//! Sliding windows over receive time, O(1) amortized per record.
//!
//! A window of length `W` at time `now` holds the entries with time `t` in
//! `(now − W, now]`: an entry leaves exactly when `now − t` reaches `W`.
//! Entries are kept in a ring (`VecDeque`) in time order; a new entry goes
//! to the back and expired ones leave from the front, each once, so the
//! work per record does not depend on the window's size. Running sums are
//! updated as entries enter and leave (exact: the values are integers).
//!
//! With a `resolution` `r > 0`, times are rounded down to a multiple of `r`
//! and entries in the same bucket merge, which bounds a window to `W / r`
//! entries whatever the rate; an entry then leaves when its bucket's start
//! is `W` old (up to `r` early). With `r = 0` (the default) each distinct
//! time is its own entry and edges are exact.
//!
//! A time earlier than the newest entry (a record received out of order)
//! counts as received at the newest time, so the ring stays sorted.
use std::collections::VecDeque;

/// Values a [`SumWindow`] adds up.
pub trait Sums: Copy + Default {
    fn add(&mut self, o: &Self);
    fn sub(&mut self, o: &Self);
}

/// Bucket key of time `t`.
#[inline]
fn key(t: u64, resolution: u64) -> u64 {
    if resolution > 0 {
        t - t % resolution
    } else {
        t
    }
}

/// The clock shared by a window's operations: never goes backwards.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    newest: u64,
}

impl Clock {
    /// `t`, or the newest time seen when `t` is earlier.
    #[inline]
    pub fn at(&mut self, t: u64) -> u64 {
        self.newest = self.newest.max(t);
        self.newest
    }
}

/// Running sums over a sliding window.
#[derive(Debug, Clone)]
pub struct SumWindow<S: Sums> {
    window: u64,
    resolution: u64,
    entries: VecDeque<(u64, S)>,
    total: S,
}

impl<S: Sums> SumWindow<S> {
    pub fn new(window: u64, resolution: u64) -> Self {
        SumWindow {
            window,
            resolution,
            entries: VecDeque::new(),
            total: S::default(),
        }
    }

    /// Drop entries that are `window` old or older at `now`.
    #[inline]
    pub fn expire(&mut self, now: u64) {
        let Some(cutoff) = now.checked_sub(self.window) else {
            return;
        };
        while let Some((t, s)) = self.entries.front() {
            if *t > cutoff {
                break;
            }
            self.total.sub(s);
            self.entries.pop_front();
        }
    }

    /// Add `s` at time `now` (call [`expire`](Self::expire) first).
    #[inline]
    pub fn push(&mut self, now: u64, s: S) {
        let k = key(now, self.resolution);
        match self.entries.back_mut() {
            Some((t, b)) if *t >= k => b.add(&s),
            _ => self.entries.push_back((k, s)),
        }
        self.total.add(&s);
    }

    pub fn total(&self) -> &S {
        &self.total
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries held (buckets, or distinct times).
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Which extreme a [`MonoWindow`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extreme {
    Max,
    Min,
}

/// The maximum (or minimum) over a sliding window: a monotonic deque, so
/// each value enters and leaves once.
#[derive(Debug, Clone)]
pub struct MonoWindow {
    window: u64,
    resolution: u64,
    which: Extreme,
    q: VecDeque<(u64, i128)>,
}

impl MonoWindow {
    pub fn new(window: u64, resolution: u64, which: Extreme) -> Self {
        MonoWindow {
            window,
            resolution,
            which,
            q: VecDeque::new(),
        }
    }

    #[inline]
    fn beats(&self, a: i128, b: i128) -> bool {
        match self.which {
            Extreme::Max => a >= b,
            Extreme::Min => a <= b,
        }
    }

    #[inline]
    pub fn expire(&mut self, now: u64) {
        let Some(cutoff) = now.checked_sub(self.window) else {
            return;
        };
        while self.q.front().is_some_and(|(t, _)| *t <= cutoff) {
            self.q.pop_front();
        }
    }

    #[inline]
    pub fn push(&mut self, now: u64, v: i128) {
        let k = key(now, self.resolution);
        while let Some(&(_, b)) = self.q.back() {
            if self.beats(v, b) {
                self.q.pop_back();
            } else {
                break;
            }
        }
        // a later value that does not beat the back stays behind it; one in
        // the same bucket as the back is already covered by it
        if self.q.back().map_or(true, |(t, _)| *t < k) {
            self.q.push_back((k, v));
        }
    }

    pub fn get(&self) -> Option<i128> {
        self.q.front().map(|(_, v)| *v)
    }

    pub fn entries(&self) -> usize {
        self.q.len()
    }
}

/// The first value in a sliding window (and how many values it holds).
#[derive(Debug, Clone)]
pub struct FirstWindow {
    window: u64,
    resolution: u64,
    /// (bucket, first value in it, values in it)
    q: VecDeque<(u64, i128, u64)>,
    count: u64,
}

impl FirstWindow {
    pub fn new(window: u64, resolution: u64) -> Self {
        FirstWindow {
            window,
            resolution,
            q: VecDeque::new(),
            count: 0,
        }
    }

    #[inline]
    pub fn expire(&mut self, now: u64) {
        let Some(cutoff) = now.checked_sub(self.window) else {
            return;
        };
        while let Some(&(t, _, n)) = self.q.front() {
            if t > cutoff {
                break;
            }
            self.count -= n;
            self.q.pop_front();
        }
    }

    #[inline]
    pub fn push(&mut self, now: u64, v: i128) {
        let k = key(now, self.resolution);
        match self.q.back_mut() {
            Some((t, _, n)) if *t >= k => *n += 1,
            _ => self.q.push_back((k, v, 1)),
        }
        self.count += 1;
    }

    pub fn first(&self) -> Option<i128> {
        self.q.front().map(|(_, v, _)| *v)
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn entries(&self) -> usize {
        self.q.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, Default, PartialEq)]
    struct N(i64);
    impl Sums for N {
        fn add(&mut self, o: &Self) {
            self.0 += o.0;
        }
        fn sub(&mut self, o: &Self) {
            self.0 -= o.0;
        }
    }

    fn at(w: &mut SumWindow<N>, now: u64, v: i64) -> i64 {
        w.expire(now);
        w.push(now, N(v));
        w.total().0
    }

    #[test]
    fn entry_leaves_exactly_when_window_old() {
        let mut w = SumWindow::new(100, 0);
        assert_eq!(at(&mut w, 1000, 1), 1);
        assert_eq!(at(&mut w, 1099, 10), 11); // 99 old: still in
        assert_eq!(at(&mut w, 1100, 100), 110); // the first is 100 old: out
        assert_eq!(at(&mut w, 1199, 0), 100);
        assert_eq!(at(&mut w, 1200, 0), 0);
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn same_time_merges_and_late_times_count_as_newest() {
        let mut w = SumWindow::new(100, 0);
        let mut c = Clock::default();
        at(&mut w, c.at(50), 1);
        at(&mut w, c.at(50), 1);
        assert_eq!(w.len(), 1);
        let late = c.at(40);
        assert_eq!(late, 50);
        assert_eq!(at(&mut w, late, 1), 3);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn resolution_bounds_entries() {
        let mut w = SumWindow::new(1000, 10);
        for t in 0..10_000u64 {
            at(&mut w, t, 1);
        }
        assert!(w.len() <= 100, "{}", w.len());
        // at 9999 the bucket [8990, 9000) has left: [9000, 9010) … [9990, 10000) remain
        assert_eq!(w.total().0, 1000);
        assert_eq!(w.len(), 100);
    }

    #[test]
    fn max_and_min_follow_the_window() {
        let mut hi = MonoWindow::new(10, 0, Extreme::Max);
        let mut lo = MonoWindow::new(10, 0, Extreme::Min);
        let vals = [5, 3, 8, 1, 7, 2, 2, 9, 4, 6, 0, 5];
        for (i, v) in vals.iter().enumerate() {
            let now = 100 + 3 * i as u64;
            hi.expire(now);
            lo.expire(now);
            hi.push(now, *v);
            lo.push(now, *v);
            // brute force over the values whose time is in (now-10, now]
            let inside: Vec<i128> = vals
                .iter()
                .enumerate()
                .filter(|(j, _)| {
                    let t = 100 + 3 * *j as u64;
                    t <= now && t + 10 > now
                })
                .map(|(_, v)| *v)
                .collect();
            assert_eq!(hi.get(), inside.iter().max().copied(), "at {i}");
            assert_eq!(lo.get(), inside.iter().min().copied(), "at {i}");
        }
    }

    #[test]
    fn first_value_and_count() {
        let mut f = FirstWindow::new(10, 0);
        for (t, v) in [(0u64, 5i128), (4, 6), (9, 7), (10, 8), (14, 9)] {
            f.expire(t);
            f.push(t, v);
        }
        // at 14: times 9 (>4), 10, 14 remain; 4 left exactly at 14
        assert_eq!(f.first(), Some(7));
        assert_eq!(f.count(), 3);
    }
}
