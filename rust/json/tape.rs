//! The tape: a reusable record of one document's first nesting levels,
//! filled while the document is validated (`validate`), so routing finds
//! fields without walking the bytes again (`doc`). Plain data: it knows
//! neither the validator nor the walker.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Ty, NO_ID, RECORD_DEPTH};

/// One recorded child: an object field (with its key) or an array element.
#[derive(Debug, Clone, Copy)]
pub(super) struct Child {
    pub(super) key: (u32, u32),
    pub(super) val: (u32, u32),
    pub(super) ty: Ty,
    /// Container id when this child is a container whose children are recorded.
    pub(super) id: u32,
}

/// Where one recorded container's records sit on the tape: its children and
/// their descendants are `first..end`. Looking a key up walks the direct
/// children only, jumping over each child container's span, so it costs the
/// number of the container's own fields (never the whole tape).
#[derive(Debug, Clone, Copy)]
pub(super) struct Children {
    pub(super) first: u32,
    pub(super) end: u32,
}

/// Reusable record of one document's shallow structure.
#[derive(Debug, Default)]
pub struct Tape {
    pub(super) children: Vec<Child>,
    /// Indexed by container id.
    pub(super) containers: Vec<Children>,
    /// Deepest container (root = 1) whose children are recorded; 0 = [`RECORD_DEPTH`].
    pub(super) depth: usize,
    /// Tape entries visited by lookups since the tape was made (a measure of
    /// work, for tests that check lookups stay linear in the frame).
    /// (Atomic only to keep `Tape: Sync`; updated with plain relaxed loads and stores.)
    pub(super) visits: AtomicU64,
}

/// Children kept allocated between documents; a bigger tape (one huge frame)
/// is shrunk back so one hostile frame does not pin its memory.
const TAPE_KEEP: usize = 1 << 16;

impl Tape {
    /// A tape recording children of containers down to `depth` (root = 1):
    /// routing that only reads the root and one level below needs 2.
    pub fn with_depth(depth: usize) -> Self {
        Tape {
            depth: depth.clamp(1, RECORD_DEPTH),
            ..Tape::default()
        }
    }

    /// Tape entries visited by lookups so far (see [`Doc::get_many_in`](super::Doc::get_many_in)).
    pub fn visits(&self) -> u64 {
        self.visits.load(Ordering::Relaxed)
    }

    /// Make ready for a document of `len` bytes: a tape grown by an earlier
    /// huge document is released unless this one may need it as well.
    pub(super) fn clear(&mut self, len: usize) {
        if self.children.capacity() > TAPE_KEEP.max(len) {
            self.children = Vec::new();
            self.containers = Vec::new();
        }
        self.children.clear();
        self.containers.clear();
    }

    /// Children of container `id`, in document order.
    pub(super) fn children_of(&self, id: u32) -> ChildIter<'_> {
        let span = self.containers.get(id as usize).map_or(
            Children {
                first: NO_ID,
                end: NO_ID,
            },
            |c| *c,
        );
        ChildIter {
            tape: self,
            next: span.first,
            end: span.end,
        }
    }
}

/// Walks the direct children of one container, counting visits.
pub(super) struct ChildIter<'t> {
    tape: &'t Tape,
    next: u32,
    end: u32,
}

impl<'t> Iterator for ChildIter<'t> {
    type Item = &'t Child;

    #[inline]
    fn next(&mut self) -> Option<&'t Child> {
        if self.next >= self.end {
            return None;
        }
        let c = self.tape.children.get(self.next as usize)?;
        let v = &self.tape.visits;
        v.store(v.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        // over this child's own records, to its next sibling
        self.next = match self.tape.containers.get(c.id as usize) {
            Some(span) => span.end,
            None => self.next + 1,
        };
        Some(c)
    }
}
