//! A small exporter for the Arrow C data interface
//! (<https://arrow.apache.org/docs/format/CDataInterface.html>): the two C
//! structs, and their export from owned Rust buffers.
//!
//! Only what the normalized records need: primitive columns, UTF-8
//! strings, lists and structs. A record batch is exported as a struct
//! array (format `+s`) whose children are the columns, as the interface
//! prescribes. The consumer (pyarrow) takes the structs by moving them and
//! calls `release` when it is done with the buffers; nothing is copied.
//!
//! Written by hand instead of depending on arrow-rs: this is all the
//! interface ssmd needs, and it adds nothing to the build.
use std::ffi::{c_char, c_void, CString};
use std::ptr;

use super::pool;

/// `struct ArrowSchema` of the C data interface.
#[repr(C)]
#[derive(Debug)]
pub struct FfiSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut FfiSchema,
    dictionary: *mut FfiSchema,
    release: Option<unsafe extern "C" fn(*mut FfiSchema)>,
    private_data: *mut c_void,
}

/// `struct ArrowArray` of the C data interface.
#[repr(C)]
#[derive(Debug)]
pub struct FfiArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut FfiArray,
    dictionary: *mut FfiArray,
    release: Option<unsafe extern "C" fn(*mut FfiArray)>,
    private_data: *mut c_void,
}

// Both own what they point to (through `private_data`) until released;
// moving them between threads is what the interface is for.
unsafe impl Send for FfiSchema {}
unsafe impl Send for FfiArray {}

impl Drop for FfiSchema {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: release is ours (or the producer's) and not yet called.
            unsafe { release(self) };
        }
    }
}

impl Drop for FfiArray {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: as above.
            unsafe { release(self) };
        }
    }
}

/// `ARROW_FLAG_NULLABLE`.
const NULLABLE: i64 = 2;

/// The type of a column: an Arrow format string and, for nested types,
/// the child fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    /// Arrow format string: `l` int64, `L` uint64, `I` uint32, `g` float64,
    /// `u` utf8, `tsn:UTC`/`tsm:UTC` timestamps, `+l` list, `+s` struct.
    pub format: &'static str,
    pub nullable: bool,
    pub children: Vec<Field>,
}

impl Field {
    pub fn new(name: &'static str, format: &'static str, nullable: bool) -> Field {
        Field {
            name,
            format,
            nullable,
            children: Vec::new(),
        }
    }

    pub fn nested(
        name: &'static str,
        format: &'static str,
        nullable: bool,
        children: Vec<Field>,
    ) -> Field {
        Field {
            name,
            format,
            nullable,
            children,
        }
    }
}

/// One buffer of an array, owned (kept aligned to its element type).
#[derive(Debug)]
pub enum Buffer {
    /// An absent buffer (no validity bitmap when nothing is null).
    Absent,
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    F64(Vec<f64>),
}

impl Buffer {
    /// Give the storage to the pool for the next batch.
    fn recycle(self) {
        match self {
            Buffer::Absent => {}
            Buffer::U8(v) => pool::give(v),
            Buffer::I32(v) => pool::give(v),
            Buffer::I64(v) => pool::give(v),
            Buffer::U32(v) => pool::give(v),
            Buffer::U64(v) => pool::give(v),
            Buffer::F64(v) => pool::give(v),
        }
    }

    fn ptr(&self) -> *const c_void {
        match self {
            Buffer::Absent => ptr::null(),
            Buffer::U8(v) => v.as_ptr().cast(),
            Buffer::I32(v) => v.as_ptr().cast(),
            Buffer::I64(v) => v.as_ptr().cast(),
            Buffer::U32(v) => v.as_ptr().cast(),
            Buffer::U64(v) => v.as_ptr().cast(),
            Buffer::F64(v) => v.as_ptr().cast(),
        }
    }

    /// Bytes held, for batch sizing.
    pub fn bytes(&self) -> usize {
        match self {
            Buffer::Absent => 0,
            Buffer::U8(v) => v.len(),
            Buffer::I32(v) => v.len() * 4,
            Buffer::U32(v) => v.len() * 4,
            Buffer::I64(v) => v.len() * 8,
            Buffer::U64(v) => v.len() * 8,
            Buffer::F64(v) => v.len() * 8,
        }
    }
}

/// The data of one array: its buffers in the order the format prescribes
/// (validity first) and its children.
#[derive(Debug)]
pub struct Data {
    pub len: usize,
    pub null_count: usize,
    pub buffers: Vec<Buffer>,
    pub children: Vec<Data>,
}

impl Data {
    /// Bytes held by this array and its children.
    pub fn bytes(&self) -> usize {
        self.buffers.iter().map(Buffer::bytes).sum::<usize>()
            + self.children.iter().map(Data::bytes).sum::<usize>()
    }
}

struct SchemaPrivate {
    _format: CString,
    _name: CString,
    children: Vec<*mut FfiSchema>,
}

struct ArrayPrivate {
    buffers: Vec<Buffer>,
    _buffer_ptrs: Vec<*const c_void>,
    children: Vec<*mut FfiArray>,
}

fn cstring(s: &str) -> CString {
    // Names and formats are ssmd's own constants: never an interior NUL.
    CString::new(s).unwrap_or_default()
}

/// Export `field` (with its children).
pub fn export_schema(field: &Field) -> FfiSchema {
    let format = cstring(field.format);
    let name = cstring(field.name);
    let mut children: Vec<*mut FfiSchema> = field
        .children
        .iter()
        .map(|c| Box::into_raw(Box::new(export_schema(c))))
        .collect();
    let n_children = children.len() as i64;
    let children_ptr = if children.is_empty() {
        ptr::null_mut()
    } else {
        children.as_mut_ptr()
    };
    let private = Box::new(SchemaPrivate {
        _format: format,
        _name: name,
        children,
    });
    FfiSchema {
        format: private._format.as_ptr(),
        name: private._name.as_ptr(),
        metadata: ptr::null(),
        flags: if field.nullable { NULLABLE } else { 0 },
        n_children,
        children: children_ptr,
        dictionary: ptr::null_mut(),
        release: Some(release_schema),
        private_data: Box::into_raw(private).cast(),
    }
}

unsafe extern "C" fn release_schema(schema: *mut FfiSchema) {
    // SAFETY: called once by the consumer (or our Drop) on a struct we made.
    let Some(s) = (unsafe { schema.as_mut() }) else {
        return;
    };
    if s.release.is_none() {
        return;
    }
    if !s.private_data.is_null() {
        // SAFETY: private_data is the Box we leaked in export_schema.
        let private = unsafe { Box::from_raw(s.private_data.cast::<SchemaPrivate>()) };
        for child in &private.children {
            // SAFETY: each child is a Box we leaked; a child the consumer
            // moved out has its release set to None, and its Drop then does
            // nothing.
            drop(unsafe { Box::from_raw(*child) });
        }
    }
    s.private_data = ptr::null_mut();
    s.release = None;
}

/// Export `data` (moved: the consumer owns the buffers until it releases them).
pub fn export_array(data: Data) -> FfiArray {
    let Data {
        len,
        null_count,
        buffers,
        children,
    } = data;
    let mut buffer_ptrs: Vec<*const c_void> = buffers.iter().map(Buffer::ptr).collect();
    let mut children: Vec<*mut FfiArray> = children
        .into_iter()
        .map(|c| Box::into_raw(Box::new(export_array(c))))
        .collect();
    let n_buffers = buffer_ptrs.len() as i64;
    let n_children = children.len() as i64;
    let buffers_ptr = buffer_ptrs.as_mut_ptr();
    let children_ptr = if children.is_empty() {
        ptr::null_mut()
    } else {
        children.as_mut_ptr()
    };
    let private = Box::new(ArrayPrivate {
        buffers,
        _buffer_ptrs: buffer_ptrs,
        children,
    });
    FfiArray {
        length: len as i64,
        null_count: null_count as i64,
        offset: 0,
        n_buffers,
        n_children,
        buffers: buffers_ptr,
        children: children_ptr,
        dictionary: ptr::null_mut(),
        release: Some(release_array),
        private_data: Box::into_raw(private).cast(),
    }
}

unsafe extern "C" fn release_array(array: *mut FfiArray) {
    // SAFETY: as for release_schema.
    let Some(a) = (unsafe { array.as_mut() }) else {
        return;
    };
    if a.release.is_none() {
        return;
    }
    if !a.private_data.is_null() {
        // SAFETY: private_data is the Box we leaked in export_array.
        let private = unsafe { Box::from_raw(a.private_data.cast::<ArrayPrivate>()) };
        for child in &private.children {
            // SAFETY: see release_schema.
            drop(unsafe { Box::from_raw(*child) });
        }
        for b in private.buffers {
            b.recycle();
        }
    }
    a.private_data = ptr::null_mut();
    a.release = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn schema_and_array_export_and_release() {
        let f = Field::nested(
            "",
            "+s",
            false,
            vec![Field::new("a", "l", false), Field::new("b", "u", true)],
        );
        let s = export_schema(&f);
        assert_eq!(s.n_children, 2);
        // SAFETY: the pointers are the ones export_schema built just above.
        unsafe {
            let child = &**s.children.add(1);
            assert_eq!(CStr::from_ptr(child.format).to_str().unwrap(), "u");
            assert_eq!(CStr::from_ptr(child.name).to_str().unwrap(), "b");
            assert_eq!(child.flags, NULLABLE);
        }
        let d = Data {
            len: 2,
            null_count: 0,
            buffers: vec![Buffer::Absent],
            children: vec![
                Data {
                    len: 2,
                    null_count: 0,
                    buffers: vec![Buffer::Absent, Buffer::I64(vec![1, 2])],
                    children: vec![],
                },
                Data {
                    len: 2,
                    null_count: 1,
                    buffers: vec![
                        Buffer::U8(vec![0b01]),
                        Buffer::I32(vec![0, 1, 1]),
                        Buffer::U8(b"x".to_vec()),
                    ],
                    children: vec![],
                },
            ],
        };
        let mut a = export_array(d);
        assert_eq!((a.length, a.n_buffers, a.n_children), (2, 1, 2));
        // SAFETY: as above.
        unsafe {
            let c0 = &**a.children;
            assert_eq!(*c0.buffers.add(1).cast::<*const i64>().read().add(1), 2);
            // a consumer moving a child out: it releases it itself
            let moved = std::ptr::read(*a.children.add(1));
            (**a.children.add(1)).release = None;
            drop(moved);
        }
        // SAFETY: the parent still owns its other child.
        unsafe { release_array(&mut a) };
        assert!(a.release.is_none());
        drop(a);
        drop(s);
    }
}
