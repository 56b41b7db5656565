//! Member-by-member verification of archive files and start-up repair of
//! `.part` files left by a crash (DESIGN §5).
use super::line::{parse_envelope, parse_rx_seq};
use super::manifest::{sync_dir, update_manifest, FileEntry, FileStats};
use super::time::Date;
use super::{ArchiveError, Codec, Result};
use memchr::{memchr_iter, memmem};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

/// What a member-by-member scan of an archive file found.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanResult {
    pub codec: Codec,
    /// Length of the prefix made of complete, valid members.
    pub valid_len: u64,
    /// Length of the file.
    pub file_len: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub error: Option<String>,
    /// Manifest entry describing the valid prefix (name without `.part`).
    pub entry: FileEntry,
}

/// The subject of a gap status line, `None` for any other line.
#[inline]
pub(crate) fn gap_subject(line: &[u8]) -> Option<&[u8]> {
    memmem::find(line, br#""ssmd":"gap""#)?;
    parse_envelope(line).filter(|e| e.is_gap()).map(|e| e.subj)
}

/// Account the lines of one decompressed member; `Err` names the problem.
fn account_member(data: &[u8], stats: &mut FileStats) -> std::result::Result<(), String> {
    if data.last().is_some_and(|&b| b != b'\n') {
        return Err("member does not end with a newline".into());
    }
    let mut start = 0;
    for end in memchr_iter(b'\n', data) {
        let line = &data[start..end];
        let head = parse_rx_seq(line)
            .ok_or_else(|| format!("line without an rx prefix at member offset {start}"))?;
        stats.add(head.rx, head.seq, line.len() + 1);
        if let Some(subj) = gap_subject(line) {
            stats.add_gap(head.rx, subj);
        }
        start = end + 1;
    }
    Ok(())
}

fn decode_member<R: BufRead>(codec: Codec, r: R, out: &mut Vec<u8>) -> io::Result<()> {
    match codec {
        Codec::Gzip => flate2::bufread::GzDecoder::new(r)
            .read_to_end(out)
            .map(drop),
        Codec::Zstd => zstd::stream::read::Decoder::with_buffer(r)?
            .single_frame()
            .read_to_end(out)
            .map(drop),
    }
}

/// Verify an archive file (finalized or `.part`) member by member: each
/// member must decompress with a valid checksum and hold complete envelope
/// lines. Stops at the first bad member.
pub fn scan_file(path: &Path) -> Result<ScanResult> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ArchiveError::Config(format!("not a file name: {}", path.display())))?;
    let (codec, stem, _) = Codec::of_file_name(name).ok_or_else(|| {
        ArchiveError::Config(format!("not an archive file name: {}", path.display()))
    })?;
    let final_name = format!("{stem}.{}", codec.extension());
    let err = |e| ArchiveError::io_path("reading", path, e);
    let file = File::open(path).map_err(err)?;
    let file_len = file.metadata().map_err(err)?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut stats = FileStats::default();
    let mut members = 0;
    let mut valid_len = 0;
    let mut error = None;
    let mut buf = Vec::new();
    loop {
        if reader.fill_buf().map_err(err)?.is_empty() {
            break;
        }
        buf.clear();
        if let Err(e) = decode_member(codec, &mut reader, &mut buf) {
            error = Some(format!("bad member at offset {valid_len}: {e}"));
            break;
        }
        let mut member = FileStats::default();
        if let Err(reason) = account_member(&buf, &mut member) {
            error = Some(format!("bad member at offset {valid_len}: {reason}"));
            break;
        }
        stats.merge(&member);
        members += 1;
        valid_len = reader.stream_position().map_err(err)?;
    }
    let sha256 = sha256_prefix(path, valid_len)?;
    Ok(ScanResult {
        codec,
        valid_len,
        file_len,
        error,
        entry: stats.into_entry(final_name, valid_len, members, sha256, codec.name()),
    })
}

fn sha256_prefix(path: &Path, len: u64) -> Result<String> {
    let err = |e| ArchiveError::io_path("reading", path, e);
    let mut f = File::open(path).map_err(err)?.take(len);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// The file stem `{HHMM}-{writer}` or `{HHMM}-{writer}-{NN}`.
pub(crate) fn stem(hhmm: &str, writer: &str, suffix: u32) -> String {
    if suffix == 0 {
        format!("{hhmm}-{writer}")
    } else {
        format!("{hhmm}-{writer}-{suffix:02}")
    }
}

/// Whether a file stem was written by `writer`.
pub(crate) fn stem_belongs_to(stem: &str, writer: &str) -> bool {
    let b = stem.as_bytes();
    if b.len() < 6 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &stem[5..];
    match rest.strip_prefix(writer) {
        Some("") => true,
        Some(tail) => tail
            .strip_prefix('-')
            .is_some_and(|d| d.len() >= 2 && d.bytes().all(|c| c.is_ascii_digit())),
        None => false,
    }
}

/// Whether any file (either codec, final or `.part`) uses `stem` in `dir`,
/// or the manifest already names it.
pub(crate) fn stem_taken(dir: &Path, stem: &str, manifest_names: &[String]) -> bool {
    [Codec::Gzip, Codec::Zstd].iter().any(|c| {
        let name = format!("{stem}.{}", c.extension());
        manifest_names.contains(&name)
            || dir.join(&name).exists()
            || dir.join(format!("{name}.part")).exists()
    })
}

/// Rename without replacing an existing `to` (link + unlink; a crash in
/// between leaves two names of one inode, which repair resolves).
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            if to.exists() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", to.display()),
                ));
            }
            fs::rename(from, to)
        }
    }
}

#[cfg(unix)]
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
pub(crate) fn same_file(_a: &Path, _b: &Path) -> bool {
    false
}

/// Date directories of a venue directory, sorted.
pub(crate) fn date_dirs(venue_dir: &Path) -> Result<Vec<(Date, PathBuf)>> {
    let rd = match fs::read_dir(venue_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ArchiveError::io_path("listing", venue_dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| ArchiveError::io_path("listing", venue_dir, e))?;
        let name = ent.file_name();
        if let Some(date) = name.to_str().and_then(Date::parse) {
            if ent.path().is_dir() {
                out.push((date, ent.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Repair every `.part` file of `writer` under `venue_dir`: truncate it to
/// its last complete member, then finalize it (or delete it when nothing
/// valid is left). Returns the finalized paths.
pub(crate) fn repair_parts(
    venue_dir: &Path,
    venue: &str,
    writer: &str,
    fsync: bool,
) -> Result<Vec<PathBuf>> {
    let mut done = Vec::new();
    for (date, day_dir) in date_dirs(venue_dir)? {
        let rd =
            fs::read_dir(&day_dir).map_err(|e| ArchiveError::io_path("listing", &day_dir, e))?;
        let mut parts = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| ArchiveError::io_path("listing", &day_dir, e))?;
            if let Some(name) = ent.file_name().to_str() {
                if let Some((_, stem, true)) = Codec::of_file_name(name) {
                    if stem_belongs_to(stem, writer) {
                        parts.push(ent.path());
                    }
                }
            }
        }
        parts.sort();
        for part in parts {
            if let Some(p) = repair_one(&part, &day_dir, venue, date, writer, fsync)? {
                done.push(p);
            }
        }
    }
    Ok(done)
}

fn repair_one(
    part: &Path,
    day_dir: &Path,
    venue: &str,
    date: Date,
    writer: &str,
    fsync: bool,
) -> Result<Option<PathBuf>> {
    let scan = scan_file(part)?;
    if scan.valid_len < scan.file_len {
        let f = OpenOptions::new()
            .write(true)
            .open(part)
            .map_err(|e| ArchiveError::io_path("opening", part, e))?;
        f.set_len(scan.valid_len)
            .and_then(|()| if fsync { f.sync_all() } else { Ok(()) })
            .map_err(|e| ArchiveError::io_path("truncating", part, e))?;
    }
    if scan.entry.lines == 0 {
        fs::remove_file(part).map_err(|e| ArchiveError::io_path("removing", part, e))?;
        if fsync {
            sync_dir(day_dir)?;
        }
        return Ok(None);
    }
    let mut entry = scan.entry;
    let mut target = day_dir.join(&entry.name);
    if target.exists() && same_file(part, &target) {
        // Crash between link and unlink of a finalize: drop the extra name.
        fs::remove_file(part).map_err(|e| ArchiveError::io_path("removing", part, e))?;
    } else {
        loop {
            match rename_noreplace(part, &target) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // Never overwrite: take the next free suffix of this window.
                    let hhmm = &entry.name[..4];
                    let names: Vec<String> = Vec::new();
                    let s = (1..)
                        .map(|n| stem(hhmm, writer, n))
                        .find(|s| !stem_taken(day_dir, s, &names))
                        .unwrap_or_default();
                    entry.name = format!("{s}.{}", scan.codec.extension());
                    target = day_dir.join(&entry.name);
                }
                Err(e) => return Err(ArchiveError::io_path("finalizing", part, e)),
            }
        }
    }
    if fsync {
        sync_dir(day_dir)?;
    }
    update_manifest(day_dir, venue, date, vec![entry], fsync)?;
    Ok(Some(target))
}
