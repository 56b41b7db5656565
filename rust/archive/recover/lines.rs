//! Complete lines over a member reader, never across a break.
use super::members::{Fill, MemberReader, Piece};
use super::{Damage, MAX_LINE_BYTES};
use memchr::memchr;

/// Complete lines over a [`MemberReader`]: lines never span a break, and a
/// final line without a newline is completed unless content was skipped
/// after it.
pub struct Lines {
    src: MemberReader,
    cur: Fill,
    pos: usize,
    carry: Vec<u8>,
    /// The current line: `cur[a..b]` when it lies whole in the decode
    /// buffer, else (`None`) in `joined`.
    span: Option<(usize, usize)>,
    joined: Vec<u8>,
    /// Dropping an over-long line up to its newline.
    skipping: bool,
    ended: bool,
    end_after_break: bool,
}

impl Lines {
    pub fn new(src: MemberReader) -> Lines {
        Lines {
            src,
            cur: Fill::default(),
            pos: 0,
            carry: Vec::new(),
            span: None,
            joined: Vec::new(),
            skipping: false,
            ended: false,
            end_after_break: false,
        }
    }

    /// Decode into `buf` (the buffer of a file read before), before the
    /// first line is read.
    pub fn reuse_buffer(&mut self, mut buf: Fill) {
        if self.cur.is_empty() && self.pos == 0 {
            buf.clear();
            self.cur = buf;
        }
    }

    /// The decode buffer, emptied, once the file is read to its end.
    pub fn take_buffer(&mut self) -> Fill {
        let mut buf = std::mem::take(&mut self.cur);
        buf.clear();
        self.pos = 0;
        self.span = None;
        buf
    }

    /// The member reader (for its counts and damage).
    pub fn source(&self) -> &MemberReader {
        &self.src
    }

    /// Mutable access to the damage record (to add line problems).
    pub fn damage_mut(&mut self) -> &mut Damage {
        &mut self.src.damage
    }

    /// Content was skipped: a line begun before it cannot be completed.
    fn drop_partial(&mut self) {
        if self.skipping {
            self.skipping = false; // an over-long line, counted already
        } else if !self.carry.is_empty() {
            self.src.damage.lines += 1;
            self.carry.clear();
        }
    }

    /// The next line, with its newline, into `line` (cleared first);
    /// false at the end of the file.
    pub fn next_line(&mut self, line: &mut Vec<u8>) -> bool {
        line.clear();
        if !self.advance() {
            return false;
        }
        line.extend_from_slice(self.line());
        true
    }

    /// The line found by the last [`Self::advance`] that returned true,
    /// with its newline: borrowed from the decode buffer when it lies
    /// there whole, so it is not copied.
    pub fn line(&self) -> &[u8] {
        match self.span {
            Some((a, b)) => &self.cur.bytes()[a..b],
            None => &self.joined,
        }
    }

    /// Move to the next line ([`Self::line`]); false at the end of the file.
    pub fn advance(&mut self) -> bool {
        loop {
            let rest = &self.cur.bytes()[self.pos..];
            if let Some(i) = memchr(b'\n', rest) {
                let end = self.pos + i + 1;
                if self.skipping {
                    self.skipping = false;
                    self.pos = end;
                    continue;
                }
                if self.carry.is_empty() {
                    self.span = Some((self.pos, end));
                } else {
                    self.joined.clear();
                    self.joined.append(&mut self.carry);
                    self.joined
                        .extend_from_slice(&self.cur.bytes()[self.pos..end]);
                    self.span = None;
                }
                self.pos = end;
                return true;
            }
            if !self.skipping {
                if self.carry.len() + rest.len() > MAX_LINE_BYTES {
                    let n = self.carry.len() + rest.len();
                    self.src.damage.lines += 1;
                    self.src.damage.note(format!(
                        "dropped a line longer than {MAX_LINE_BYTES} bytes ({n}+ bytes)"
                    ));
                    self.carry.clear();
                    self.skipping = true;
                } else {
                    self.carry.extend_from_slice(rest);
                }
            }
            self.pos = 0;
            self.span = None;
            self.cur.clear();
            if self.ended {
                if self.end_after_break {
                    if self.src.end_torn {
                        self.carry.clear(); // the line being written
                    }
                    self.drop_partial();
                    return false;
                }
                if self.skipping || self.carry.is_empty() {
                    self.skipping = false;
                    return false;
                }
                self.joined.clear();
                self.joined.append(&mut self.carry);
                self.joined.push(b'\n');
                return true;
            }
            match self.src.next_piece(&mut self.cur) {
                Piece::Data { after_break } => {
                    if after_break {
                        self.drop_partial();
                    }
                }
                Piece::End { after_break } => {
                    self.ended = true;
                    self.end_after_break = after_break;
                }
            }
        }
    }
}
