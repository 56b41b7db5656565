//! Opening one archive file for reading (or saying why it is skipped),
//! and the warning for what reading it lost.
use super::lines::Lines;
use super::members::MemberReader;
use super::{plural, Damage, FileCodec, VERIFY_MEMBER_BYTES};
use crate::archive::Codec;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Content of one file that a reader could not read, or a file it skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadWarning {
    pub path: PathBuf,
    /// Members (frames) dropped.
    pub members: u64,
    /// Compressed bytes skipped.
    pub bytes: u64,
    /// Lines dropped.
    pub lines: u64,
    /// What happened, one line.
    pub reason: String,
}

impl ReadWarning {
    /// A whole file skipped without reading it.
    pub fn skipped(path: &Path, reason: String) -> ReadWarning {
        ReadWarning {
            path: path.to_path_buf(),
            members: 0,
            bytes: 0,
            lines: 0,
            reason,
        }
    }

    /// The warning for what reading `path` lost, `None` when nothing was.
    pub fn from_damage(path: &Path, d: &Damage) -> Option<ReadWarning> {
        (!d.is_clean()).then(|| ReadWarning {
            path: path.to_path_buf(),
            members: d.members,
            bytes: d.bytes,
            lines: d.lines,
            reason: d.reason(),
        })
    }

    /// `{path}: {reason} (dropped …)`.
    pub fn message(&self) -> String {
        let mut parts = Vec::new();
        if self.members > 0 {
            parts.push(format!("{} member{}", self.members, plural(self.members)));
        }
        if self.bytes > 0 {
            parts.push(format!("{} byte{}", self.bytes, plural(self.bytes)));
        }
        if self.lines > 0 {
            parts.push(format!("{} line{}", self.lines, plural(self.lines)));
        }
        let dropped = if parts.is_empty() {
            String::new()
        } else {
            format!(" (dropped {})", parts.join(", "))
        };
        format!("{}: {}{dropped}", self.path.display(), self.reason)
    }
}

fn kind_of(ft: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_block_device() || ft.is_char_device() {
            return "a device";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading without blocking on a FIFO that appeared after
/// the type check.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    let mut o = fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK);
    }
    o.open(path)
}

/// Open an archive file's lines. `codec` `None` takes it from the name
/// (`.jsonl.gz`, `.jsonl.zst`, with `.part`). A file that is not a regular
/// file (a FIFO, a directory, a dangling symlink) or cannot be opened is a
/// warning and is never read; `Ok(None)` for a `.part` file that is gone
/// (finalized or removed by its writer since it was listed) when its final
/// name is gone too or was listed itself (`listed`).
pub fn open_lines(
    path: &Path,
    codec: Option<FileCodec>,
    listed: &dyn Fn(&Path) -> bool,
) -> std::result::Result<Option<Lines>, ReadWarning> {
    open_lines_with(path, codec, listed, VERIFY_MEMBER_BYTES)
}

/// [`open_lines`] with members of up to `verify_limit` bytes checked
/// before they are handed out (0: every member handed out as it decodes).
pub fn open_lines_with(
    path: &Path,
    codec: Option<FileCodec>,
    listed: &dyn Fn(&Path) -> bool,
    verify_limit: usize,
) -> std::result::Result<Option<Lines>, ReadWarning> {
    let (codec, part) = match codec {
        Some(c) => (c, false),
        None => {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            match Codec::of_file_name(name) {
                Some((c, _, part)) => (c.into(), part),
                None => {
                    return Err(ReadWarning::skipped(
                        path,
                        "not an archive file name".into(),
                    ))
                }
            }
        }
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(path).is_ok() {
                return Err(ReadWarning::skipped(
                    path,
                    "skipped: a symbolic link to nothing".into(),
                ));
            }
            if part {
                // Finalized by its writer since it was listed: read it under
                // its final name, unless that was listed (and is read) too.
                let fin = path.with_extension("");
                if listed(&fin) || !fin.is_file() {
                    return Ok(None);
                }
                return open_lines_with(&fin, Some(codec), &|_| false, verify_limit);
            }
            return Err(ReadWarning::skipped(
                path,
                "skipped: it no longer exists".into(),
            ));
        }
        Err(e) => return Err(ReadWarning::skipped(path, format!("skipped: {e}"))),
    };
    if !meta.is_file() {
        return Err(ReadWarning::skipped(
            path,
            format!("skipped: {}", kind_of(meta.file_type())),
        ));
    }
    let file = open_nonblocking(path)
        .map_err(|e| ReadWarning::skipped(path, format!("skipped: cannot open: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| ReadWarning::skipped(path, format!("skipped: {e}")))?;
    if !meta.is_file() {
        return Err(ReadWarning::skipped(
            path,
            format!("skipped: {}", kind_of(meta.file_type())),
        ));
    }
    let src = MemberReader::new(file, meta.len(), codec, part).with_verify_limit(verify_limit);
    Ok(Some(Lines::new(src)))
}
