//! Decoding a whole gzip member in one call (libdeflate), the fast path of
//! [`super::MemberReader`].
//!
//! libdeflate inflates a member held whole in memory about 1.4 times as fast
//! as the streaming decoder, and checks its CRC-32 and length as it ends.
//! The member reader holds a window of the file's compressed bytes and
//! tries this first at each member boundary. Anything it does not finish
//! cleanly (bytes that are not a member, a member longer than the window or
//! than the verify limit, damage, an I/O error) is left to the streaming
//! path, which decodes the same member again from the same offset and keeps
//! every rule of the module comment: the fast path only ever hands out a
//! member whose checksum passed.
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;

use libdeflate_sys as sys;

/// Compressed bytes held at most. The writer's members (4 MiB of lines by
/// default) compress to well under this.
pub(super) const WINDOW: usize = 4 << 20;
/// Output room tried first at most (a writer member is 4 MiB of lines plus
/// the last write); doubled up to the verify limit when short.
pub(super) const FIRST_OUT: usize = 8 << 20;
/// Output room tried first at least.
const MIN_OUT: usize = 64 << 10;
/// The gzip header flag of a header CRC.
pub(super) const FHCRC: u8 = 0x02;

/// The output room to try first: what the buffer already holds, else 16 times
/// the compressed bytes left in the window (market-data lines compress 9 to
/// 13 times), so that a small file or a `.part` flushed often does not get
/// (and zero) a buffer of a whole writer member. A member that inflates more
/// is decoded again with twice the room.
pub(super) fn first_room(held: usize, compressed: usize) -> usize {
    held.max(compressed.saturating_mul(16).clamp(MIN_OUT, FIRST_OUT))
}

/// What one whole-member decode gave.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Inflated {
    /// The member ended cleanly: `input` bytes read, `output` written.
    Member { input: usize, output: usize },
    /// The output did not fit.
    Short,
    /// Not a complete, valid member (damage, or cut off by the window).
    Bad,
}

/// A libdeflate decompressor.
pub(super) struct Inflater(NonNull<sys::libdeflate_decompressor>);

// SAFETY: a decompressor holds no thread-bound state; it is used by one
// thread at a time (`&mut self`).
unsafe impl Send for Inflater {}

impl Inflater {
    pub(super) fn new() -> Inflater {
        // SAFETY: plain allocation; NULL means out of memory.
        let p = unsafe { sys::libdeflate_alloc_decompressor() };
        Inflater(NonNull::new(p).expect("libdeflate: out of memory"))
    }

    /// Decode the gzip member at the start of `input` into `out`.
    pub(super) fn gzip(&mut self, input: &[u8], out: &mut [u8]) -> Inflated {
        let (mut used, mut made) = (0usize, 0usize);
        // SAFETY: the pointers and lengths come from live slices; libdeflate
        // reads at most `input.len()` bytes and writes at most `out.len()`.
        let ret = unsafe {
            sys::libdeflate_gzip_decompress_ex(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut used,
                &mut made,
            )
        };
        match ret {
            sys::libdeflate_result_LIBDEFLATE_SUCCESS => Inflated::Member {
                input: used,
                output: made,
            },
            sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Inflated::Short,
            _ => Inflated::Bad,
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_decompressor`, freed once.
        unsafe { sys::libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

/// A window of a file's compressed bytes, read with `pread` (the file's
/// own position is left alone).
#[derive(Default)]
pub(super) struct Window {
    buf: Vec<u8>,
    len: usize,
    /// File offset of `buf[0]`.
    at: u64,
    /// The window reaches the end of the file.
    eof: bool,
}

impl Window {
    /// The compressed bytes from `pos` on: at least half a window of them,
    /// or all that are left of the file.
    pub(super) fn from(&mut self, file: &File, pos: u64) -> io::Result<&[u8]> {
        let held = pos >= self.at && pos <= self.at + self.len as u64;
        if held {
            let off = (pos - self.at) as usize;
            if self.eof || self.len - off >= WINDOW / 2 {
                return Ok(&self.buf[off..self.len]);
            }
        }
        if self.buf.is_empty() {
            // sized to the file when it is small (most files are)
            let size = file.metadata().map_or(WINDOW as u64, |m| m.len() + 1);
            self.buf = vec![
                0;
                usize::try_from(size)
                    .unwrap_or(WINDOW)
                    .clamp(1 << 10, WINDOW)
            ];
        }
        self.at = pos;
        self.len = 0;
        self.eof = false;
        while self.len < self.buf.len() {
            match file.read_at(&mut self.buf[self.len..], pos + self.len as u64) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.len < self.buf.len() {
            self.eof = true;
        } else if self.buf.len() < WINDOW {
            // the file grew past the size it had (a `.part` being written)
            self.buf.resize(WINDOW, 0);
            return self.from(file, pos);
        }
        Ok(&self.buf[..self.len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn one_member_of_many_and_its_failures() {
        let a = b"first member\n".repeat(1000);
        let b = b"second\n".repeat(10);
        let mut file = gz(&a);
        let first = file.len();
        file.extend(gz(&b));
        let mut inf = Inflater::new();
        let mut out = vec![0; a.len() + 10];
        assert_eq!(
            inf.gzip(&file, &mut out),
            Inflated::Member {
                input: first,
                output: a.len()
            }
        );
        assert_eq!(&out[..a.len()], &a[..]);
        assert_eq!(inf.gzip(&file, &mut out[..a.len() - 1]), Inflated::Short);
        // cut off, or a flipped bit (caught by the checksum at the latest)
        assert_eq!(inf.gzip(&file[..first - 1], &mut out), Inflated::Bad);
        let mut flipped = file.clone();
        flipped[first / 2] ^= 0x10;
        assert_eq!(inf.gzip(&flipped, &mut out), Inflated::Bad);
    }

    #[test]
    fn the_window_reads_ahead_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(WINDOW * 2 + 123)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let f = File::open(&path).unwrap();
        let mut w = Window::default();
        for pos in [
            0,
            10,
            WINDOW / 2 + 1,
            WINDOW + 5,
            data.len() - 3,
            data.len(),
        ] {
            let got = w.from(&f, pos as u64).unwrap().to_vec();
            let want = &data[pos..];
            assert!(!got.is_empty() || want.is_empty());
            assert_eq!(&got[..], &want[..got.len()], "at {pos}");
            assert!(
                got.len() == want.len() || got.len() >= WINDOW / 2,
                "at {pos}"
            );
        }
    }
}
