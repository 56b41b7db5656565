//! Column builders: values appended one at a time, finished into [`Data`].
use super::ffi::{Buffer, Data};
use super::pool::{self, Pooled};

/// A validity bitmap that is only allocated once a null arrives.
#[derive(Debug, Default)]
pub struct Validity {
    bits: Vec<u8>,
    len: usize,
    nulls: usize,
}

impl Validity {
    pub fn push(&mut self, valid: bool) {
        if !valid && self.nulls == 0 && self.bits.is_empty() {
            // first null: every earlier value was valid
            self.bits = vec![0xff; self.len.div_ceil(8)];
            if self.len % 8 != 0 {
                let last = self.bits.len() - 1;
                self.bits[last] = (1u8 << (self.len % 8)) - 1;
            }
        }
        if self.nulls > 0 || !valid {
            if self.len % 8 == 0 {
                self.bits.push(0);
            }
            if valid {
                self.bits[self.len / 8] |= 1 << (self.len % 8);
            } else {
                self.nulls += 1;
            }
        }
        self.len += 1;
    }

    fn finish(&mut self) -> (usize, Buffer) {
        let nulls = std::mem::take(&mut self.nulls);
        let bits = std::mem::take(&mut self.bits);
        self.len = 0;
        if nulls == 0 {
            (0, Buffer::Absent)
        } else {
            (nulls, Buffer::U8(bits))
        }
    }
}

/// A primitive column (`l`, `L`, `I`, `g`, timestamps).
#[derive(Debug, Default)]
pub struct Prim<T> {
    values: Vec<T>,
    valid: Validity,
    /// Values of the last batch (the next one is likely as long).
    last: usize,
}

impl<T: Copy + Default + Pooled> Prim<T> {
    pub fn push(&mut self, v: Option<T>) {
        self.valid.push(v.is_some());
        refill(&mut self.values, self.last);
        self.values.push(v.unwrap_or_default());
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn take(&mut self) -> (usize, Buffer, Vec<T>) {
        let (nulls, bits) = self.valid.finish();
        self.last = self.values.len();
        (nulls, bits, std::mem::take(&mut self.values))
    }
}

macro_rules! prim_finish {
    ($t:ty, $variant:ident) => {
        impl Prim<$t> {
            pub fn finish(&mut self) -> Data {
                let (null_count, bits, values) = self.take();
                Data {
                    len: values.len(),
                    null_count,
                    buffers: vec![bits, Buffer::$variant(values)],
                    children: vec![],
                }
            }
        }
    };
}
prim_finish!(i64, I64);
prim_finish!(u64, U64);
prim_finish!(u32, U32);
prim_finish!(f64, F64);

/// A UTF-8 string column (`u`, 32-bit offsets; the leading 0 comes with
/// the first value).
#[derive(Debug, Default)]
pub struct Utf8 {
    offsets: Vec<i32>,
    data: Vec<u8>,
    valid: Validity,
    /// Sizes of the last batch: (offsets, data bytes).
    last: (usize, usize),
}

impl Utf8 {
    /// Append valid UTF-8 (the caller's guarantee), or null.
    pub fn push(&mut self, v: Option<&[u8]>) {
        self.valid.push(v.is_some());
        self.refill();
        if let Some(v) = v {
            self.data.extend_from_slice(v);
        }
        self.offsets.push(self.offset());
    }

    /// At the first value of a batch: storage from the pool.
    #[inline]
    fn refill(&mut self) {
        if self.offsets.is_empty() {
            self.offsets = first_offsets(self.last.0);
            refill(&mut self.data, self.last.1);
        }
    }

    /// Append a value written by `write` into the data buffer.
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.valid.push(true);
        self.refill();
        write(&mut self.data);
        self.offsets.push(self.offset());
    }

    fn offset(&self) -> i32 {
        // Batches are cut well below 2 GiB of text (see `Table::bytes`).
        i32::try_from(self.data.len()).unwrap_or(i32::MAX)
    }

    pub fn bytes(&self) -> usize {
        self.data.len() + self.offsets.len() * 4
    }

    pub fn finish(&mut self) -> Data {
        let (null_count, bits) = self.valid.finish();
        self.last = (self.offsets.len(), self.data.len());
        let mut offsets = std::mem::take(&mut self.offsets);
        if offsets.is_empty() {
            offsets.push(0); // no value in this batch
        }
        Data {
            len: offsets.len() - 1,
            null_count,
            buffers: vec![
                bits,
                Buffer::I32(offsets),
                Buffer::U8(std::mem::take(&mut self.data)),
            ],
            children: vec![],
        }
    }
}

/// The offsets of a list column (`+l`) whose items are built alongside.
#[derive(Debug, Default)]
pub struct ListOffsets {
    offsets: Vec<i32>,
    /// Offsets of the last batch.
    last: usize,
}

impl ListOffsets {
    /// Close one list, whose items end at `items` in the child.
    pub fn push(&mut self, items: usize) {
        if self.offsets.is_empty() {
            self.offsets = first_offsets(self.last);
        }
        self.offsets.push(i32::try_from(items).unwrap_or(i32::MAX));
    }

    pub fn bytes(&self) -> usize {
        self.offsets.len() * 4
    }

    /// The list array around its finished item (struct) array.
    pub fn finish(&mut self, items: Data) -> Data {
        self.last = self.offsets.len();
        let mut offsets = std::mem::take(&mut self.offsets);
        if offsets.is_empty() {
            offsets.push(0); // no list in this batch
        }
        Data {
            len: offsets.len() - 1,
            null_count: 0,
            buffers: vec![Buffer::Absent, Buffer::I32(offsets)],
            children: vec![items],
        }
    }
}

/// A batch's first value: the builder's storage (given back to the pool
/// when the last batch was exported) comes from the pool, already mapped and
/// as large as an earlier batch's, instead of growing from nothing.
#[inline]
fn refill<T: Pooled>(v: &mut Vec<T>, last: usize) {
    if v.capacity() == 0 {
        *v = pool::take(last);
    }
}

/// The offsets of a string or list column at its first value (pooled).
fn first_offsets(last: usize) -> Vec<i32> {
    let mut v = pool::take(last);
    v.push(0);
    v
}

/// A struct array (no nulls) of `len` rows around finished children.
pub fn struct_data(len: usize, children: Vec<Data>) -> Data {
    Data {
        len,
        null_count: 0,
        buffers: vec![Buffer::Absent],
        children,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(d: &Data) -> Option<Vec<u8>> {
        match &d.buffers[0] {
            Buffer::U8(b) => Some(b.clone()),
            _ => None,
        }
    }

    #[test]
    fn validity_allocated_at_the_first_null() {
        let mut p = Prim::<i64>::default();
        for i in 0..10 {
            p.push(Some(i));
        }
        p.push(None);
        p.push(Some(3));
        let d = p.finish();
        assert_eq!(d.null_count, 1);
        assert_eq!(bits(&d), Some(vec![0xff, 0b0000_1011]));

        let mut p = Prim::<u64>::default();
        p.push(Some(1));
        let d = p.finish();
        assert_eq!((d.null_count, bits(&d)), (0, None));
        // the builder is reusable after finish
        p.push(None);
        assert_eq!(p.finish().null_count, 1);
    }

    #[test]
    fn strings_and_lists() {
        let mut s = Utf8::default();
        s.push(Some(b"ab"));
        s.push(None);
        s.push_with(|o| o.extend_from_slice(b"c"));
        let d = s.finish();
        assert_eq!(d.len, 3);
        assert_eq!(d.null_count, 1);
        match (&d.buffers[1], &d.buffers[2]) {
            (Buffer::I32(o), Buffer::U8(v)) => {
                assert_eq!(o, &[0, 2, 2, 3]);
                assert_eq!(v, b"abc");
            }
            _ => panic!("buffers"),
        }
        let mut l = ListOffsets::default();
        l.push(2);
        l.push(2);
        let d = l.finish(struct_data(2, vec![]));
        assert_eq!(d.len, 2);
    }
}
