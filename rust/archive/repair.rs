//! Start-up repair of `.part` files left by a crash (docs/archive.md).
use super::manifest::{sync_dir, update_manifest, UpdateOpts};
use super::scan::scan_file;
use super::time::Date;
use super::{ArchiveError, Codec, Result};
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

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
    opts: &UpdateOpts<'_>,
) -> Result<Vec<PathBuf>> {
    let writer = opts.writer;
    let mut done = Vec::new();
    for (date, day_dir) in date_dirs(venue_dir)? {
        let rd =
            fs::read_dir(&day_dir).map_err(|e| ArchiveError::io_path("listing", &day_dir, e))?;
        let mut parts = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| ArchiveError::io_path("listing", &day_dir, e))?;
            if let Some(name) = ent.file_name().to_str() {
                if let Some((_, stem, true)) = Codec::of_file_name(name) {
                    // A FIFO or directory with a part's name is no writer's
                    // data: left alone (readers warn about it), never opened.
                    let regular = fs::metadata(ent.path()).is_ok_and(|m| m.is_file());
                    if stem_belongs_to(stem, writer) && regular {
                        parts.push(ent.path());
                    }
                }
            }
        }
        parts.sort();
        for part in parts {
            if let Some(p) = repair_one(&part, &day_dir, venue, date, opts)? {
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
    opts: &UpdateOpts<'_>,
) -> Result<Option<PathBuf>> {
    let (writer, fsync) = (opts.writer, opts.fsync);
    let scan = scan_file(part)?;
    if scan.gone || scan.skipped.is_some() {
        return Ok(None);
    }
    // Only a damaged tail is cut (the member a crash interrupted); damage
    // before good members stays, and readers skip it.
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
    update_manifest(day_dir, venue, date, vec![entry], opts)?;
    Ok(Some(target))
}
