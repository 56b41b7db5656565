//! Column buffers back from Arrow, for the next batch.
//!
//! A batch's buffers are handed to Python through the C data interface and
//! come back when the consumer releases the array (the Parquet writer, after
//! the row group; a polars frame, when it is dropped). Freed, each large
//! buffer would go back to the kernel and the next batch would fault fresh
//! zeroed pages in for the same amount of data: a tenth of an export's CPU.
//! Kept here instead (up to [`MAX_BYTES`]), the builders start the next
//! batch in storage that is already mapped and as large as last time.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bytes of storage held at most, over every element type.
pub const MAX_BYTES: usize = 128 << 20;
/// Smaller buffers are not worth keeping (the allocator reuses them anyway).
const MIN_BYTES: usize = 64 << 10;

static HELD: AtomicUsize = AtomicUsize::new(0);

/// Buffers of one element type, smallest first.
#[derive(Debug, Default)]
pub struct Shelf<T> {
    bufs: Vec<Vec<T>>,
}

impl<T> Shelf<T> {
    pub const fn new() -> Shelf<T> {
        Shelf { bufs: Vec::new() }
    }

    /// The smallest buffer of at least `want` elements, else the largest
    /// (emptied), if any.
    fn take(&mut self, want: usize) -> Option<Vec<T>> {
        let at = self.bufs.partition_point(|p| p.capacity() < want);
        if at < self.bufs.len() {
            Some(self.bufs.remove(at))
        } else {
            self.bufs.pop()
        }
    }

    fn put(&mut self, mut v: Vec<T>) {
        v.clear();
        let at = self.bufs.partition_point(|p| p.capacity() < v.capacity());
        self.bufs.insert(at, v);
    }
}

/// An element type with a shelf of its own (a buffer goes back to the
/// allocator with the layout it was allocated with).
pub trait Pooled: Sized + 'static {
    fn shelf() -> &'static Mutex<Shelf<Self>>;
}

macro_rules! pooled {
    ($t:ty, $name:ident) => {
        static $name: Mutex<Shelf<$t>> = Mutex::new(Shelf::new());
        impl Pooled for $t {
            fn shelf() -> &'static Mutex<Shelf<$t>> {
                &$name
            }
        }
    };
}
pooled!(u8, POOL_U8);
pooled!(i32, POOL_I32);
pooled!(i64, POOL_I64);
pooled!(u32, POOL_U32);
pooled!(u64, POOL_U64);
pooled!(f64, POOL_F64);

fn bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

fn shelf<T: Pooled>() -> std::sync::MutexGuard<'static, Shelf<T>> {
    T::shelf()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An empty buffer for about `want` elements (what the column held last
/// batch): the smallest given back earlier that holds them, else the
/// largest there is, else a new one of that capacity.
pub fn take<T: Pooled>(want: usize) -> Vec<T> {
    match shelf::<T>().take(want) {
        Some(v) => {
            HELD.fetch_sub(bytes(&v), Ordering::Relaxed);
            v
        }
        None => Vec::with_capacity(want),
    }
}

/// Keep `v`'s storage for a later [`take`] (or free it: small, or the pool
/// is full).
pub fn give<T: Pooled>(v: Vec<T>) {
    let n = bytes(&v);
    if n < MIN_BYTES {
        return;
    }
    if HELD.fetch_add(n, Ordering::Relaxed) + n > MAX_BYTES {
        HELD.fetch_sub(n, Ordering::Relaxed);
        return;
    }
    shelf::<T>().put(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shelf_hands_out_the_best_fit_emptied() {
        let mut s = Shelf::new();
        assert!(s.take(0).is_none());
        let (a, b, c) = (
            vec![1u32; 100],
            Vec::<u32>::with_capacity(1000),
            Vec::<u32>::with_capacity(5000),
        );
        let (pa, pb, pc) = (a.as_ptr(), b.as_ptr(), c.as_ptr());
        s.put(c);
        s.put(b);
        s.put(a);
        let fit = s.take(500).unwrap(); // the smallest that holds 500
        assert!(fit.is_empty() && fit.as_ptr() == pb);
        let largest = s.take(9000).unwrap(); // none holds 9000: the largest
        assert_eq!(largest.as_ptr(), pc);
        let last = s.take(0).unwrap();
        assert!(last.is_empty() && last.as_ptr() == pa);
        assert!(s.take(0).is_none());
    }

    #[test]
    fn the_pool_keeps_large_buffers_only_and_within_its_bound() {
        // u32 buffers: no other test of this binary gives or takes them
        let big = Vec::<u32>::with_capacity(MIN_BYTES); // 4 × MIN_BYTES bytes
        let p = big.as_ptr();
        give(Vec::<u32>::with_capacity(16)); // small: freed
        give(Vec::<u32>::with_capacity(MAX_BYTES / 4 + 1)); // over the bound: freed
        give(big);
        let got = take::<u32>(10);
        assert_eq!(got.as_ptr(), p);
        assert_eq!(take::<u32>(0).capacity(), 0);
        assert!(take::<u32>(77).capacity() >= 77); // nothing kept: a new one that size
    }
}
