//! The tape: a reusable record of one document's first nesting levels,
//! filled while the document is validated, so routing finds fields without
//! walking the bytes again.

use std::sync::atomic::{AtomicU64, Ordering};

use super::validate::Validator;
use super::walk::Items;
use super::{Error, Ty, Val, NO_ID, RECORD_DEPTH};

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

    /// Tape entries visited by lookups so far (see [`Doc::get_many_in`]).
    pub fn visits(&self) -> u64 {
        self.visits.load(Ordering::Relaxed)
    }

    /// Make ready for a document of `len` bytes: a tape grown by an earlier
    /// huge document is released unless this one may need it as well.
    fn clear(&mut self, len: usize) {
        if self.children.capacity() > TAPE_KEEP.max(len) {
            self.children = Vec::new();
            self.containers = Vec::new();
        }
        self.children.clear();
        self.containers.clear();
    }

    /// Children of container `id`, in document order.
    fn children_of(&self, id: u32) -> ChildIter<'_> {
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
struct ChildIter<'t> {
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

/// A validated document and its tape.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a, 't> {
    pub root: Val<'a>,
    input: &'a [u8],
    tape: &'t Tape,
}

impl<'a> Doc<'a, '_> {
    fn val(&self, c: &Child) -> Val<'a> {
        Val {
            ty: c.ty,
            raw: &self.input[c.val.0 as usize..c.val.1 as usize],
            id: c.id,
        }
    }

    /// Look up keys of object `obj` (first occurrence of each): from the
    /// tape when its fields were recorded, else by walking it.
    pub fn get_many_in<const N: usize>(
        &self,
        obj: &Val<'a>,
        keys: [&str; N],
    ) -> [Option<Val<'a>>; N] {
        if obj.id == NO_ID || obj.ty != Ty::Object {
            return obj.get_many(keys);
        }
        let mut out = [None; N];
        let mut found = 0;
        for c in self.tape.children_of(obj.id) {
            let key = &self.input[c.key.0 as usize..c.key.1 as usize];
            for (slot, want) in out.iter_mut().zip(keys.iter()) {
                if slot.is_none() && key == want.as_bytes() {
                    *slot = Some(self.val(c));
                    found += 1;
                    break;
                }
            }
            if found == N {
                break;
            }
        }
        out
    }

    /// Root-object keys.
    pub fn get_many<const N: usize>(&self, keys: [&str; N]) -> [Option<Val<'a>>; N] {
        self.get_many_in(&self.root, keys)
    }

    pub fn get(&self, key: &str) -> Option<Val<'a>> {
        let [v] = self.get_many([key]);
        v
    }

    pub fn get_in(&self, obj: &Val<'a>, key: &str) -> Option<Val<'a>> {
        let [v] = self.get_many_in(obj, [key]);
        v
    }

    /// Elements of array `arr`, from the tape when recorded.
    pub fn items(&self, arr: &Val<'a>) -> DocItems<'a, '_> {
        if arr.id == NO_ID || arr.ty != Ty::Array {
            return DocItems(ItemSource::Walk(arr.items()));
        }
        DocItems(ItemSource::Tape(self.input, self.tape.children_of(arr.id)))
    }

    /// First element of array `arr`.
    pub fn first(&self, arr: &Val<'a>) -> Option<Val<'a>> {
        if arr.id == NO_ID || arr.ty != Ty::Array {
            return arr.first();
        }
        self.tape.children_of(arr.id).next().map(|c| self.val(c))
    }
}

/// Elements of an array ([`Doc::items`]): from the tape, or by walking the bytes.
pub struct DocItems<'a, 't>(ItemSource<'a, 't>);

enum ItemSource<'a, 't> {
    Tape(&'a [u8], ChildIter<'t>),
    Walk(Items<'a>),
}

impl<'a> Iterator for DocItems<'a, '_> {
    type Item = Val<'a>;

    #[inline]
    fn next(&mut self) -> Option<Val<'a>> {
        match &mut self.0 {
            ItemSource::Tape(input, it) => it.next().map(|c| Val {
                ty: c.ty,
                raw: &input[c.val.0 as usize..c.val.1 as usize],
                id: c.id,
            }),
            ItemSource::Walk(it) => it.next(),
        }
    }
}

/// Validate `input` and record its shallow structure into `tape` (cleared first).
/// Offsets on the tape are `u32`: a longer input is refused (a caller that
/// bounds frame sizes never gets here).
pub fn parse_doc<'a, 't>(input: &'a [u8], tape: &'t mut Tape) -> Result<Doc<'a, 't>, Error> {
    tape.clear(input.len());
    if u32::try_from(input.len()).is_err() {
        return Err(Error {
            reason: "document too large",
            pos: 0,
        });
    }
    let (ty, s, e) = {
        let mut v = Validator::<true> {
            s: input,
            i: 0,
            tape: Some(tape),
        };
        v.document()?
    };
    let id = if matches!(ty, Ty::Object | Ty::Array) {
        0
    } else {
        NO_ID
    };
    Ok(Doc {
        root: Val {
            ty,
            raw: &input[s..e],
            id,
        },
        input,
        tape,
    })
}
