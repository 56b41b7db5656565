//! A validated document over its tape: [`parse_doc`] validates and records,
//! [`Doc`] looks fields up on the tape (or walks what was not recorded).

use super::tape::{Child, ChildIter, Tape};
use super::validate::Validator;
use super::walk::Items;
use super::{Error, Ty, Val, NO_ID};

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

/// Looks keys of an object up: on a document's tape ([`Doc`]) or by walking
/// the object's bytes ([`Walk`]), for code that serves both.
pub trait Lookup<'a> {
    fn get_many_in<const N: usize>(&self, obj: &Val<'a>, keys: [&str; N]) -> [Option<Val<'a>>; N];

    /// Elements of array `arr`.
    fn items_in(&self, arr: &Val<'a>) -> DocItems<'a, '_>;
}

/// Lookups that walk the bytes.
pub struct Walk;

impl<'a> Lookup<'a> for Walk {
    fn get_many_in<const N: usize>(&self, obj: &Val<'a>, keys: [&str; N]) -> [Option<Val<'a>>; N] {
        obj.get_many(keys)
    }

    fn items_in(&self, arr: &Val<'a>) -> DocItems<'a, '_> {
        DocItems(ItemSource::Walk(arr.items()))
    }
}

impl<'a> Lookup<'a> for Doc<'a, '_> {
    #[inline]
    fn get_many_in<const N: usize>(&self, obj: &Val<'a>, keys: [&str; N]) -> [Option<Val<'a>>; N] {
        Doc::get_many_in(self, obj, keys)
    }

    #[inline]
    fn items_in(&self, arr: &Val<'a>) -> DocItems<'a, '_> {
        self.items(arr)
    }
}
