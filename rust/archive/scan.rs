//! Scanning one archive file for `ssmd archive verify` and start-up repair:
//! the same member-by-member reading as the reader ([`super::recover`]),
//! so what verify calls readable is what the reader reads.
use super::line::{gap_subject, parse_envelope};
use super::manifest::{FileEntry, FileStats};
use super::recover::{open_lines_with, Damage, Lines, ReadWarning, VERIFY_MEMBER_BYTES};
use super::seqs::{Segment, SeqScan};
use super::{ArchiveError, Codec, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// What a scan of an archive file found.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanResult {
    pub codec: Codec,
    /// A `.part` file.
    pub part: bool,
    /// The file is gone (a `.part` finalized or removed since it was listed).
    pub gone: bool,
    /// Why the file was not read (not a regular file, cannot be opened).
    pub skipped: Option<String>,
    /// Length of the file.
    pub file_len: u64,
    /// sha256 of the whole file.
    pub sha256: String,
    /// Length without the damaged tail, if the file ends in damage (what
    /// repair keeps; `file_len` otherwise).
    pub valid_len: u64,
    /// What could not be read (members, bytes and lines dropped, reasons;
    /// a `.part` file's torn tail).
    pub damage: Damage,
    /// Why reading lost content, `None` when nothing was lost.
    pub error: Option<String>,
    /// Manifest entry of the readable content: lines, members and figures
    /// of the members that decoded; `bytes` and `sha256` of the first
    /// `valid_len` bytes; the name without `.part`.
    pub entry: FileEntry,
    /// Stream gaps recorded by gap status lines
    /// (`{"ssmd":"gap","reason":"stream","from":A,"to":B}`), `(A, B)`.
    pub recorded: Vec<(u64, u64)>,
    /// Stream sequence segments (see [`super::seqs`]).
    pub segments: Vec<Segment>,
    /// `M` ranges archived twice within one segment.
    pub duplicates: Vec<(u64, u64)>,
}

/// A recorded stream gap of a gap status line's message.
fn stream_gap(msg: &[u8]) -> Option<(u64, u64)> {
    let v: serde_json::Value = serde_json::from_slice(msg).ok()?;
    let o = v.as_object()?;
    if o.get("ssmd")?.as_str()? != "gap" || o.get("reason")?.as_str()? != "stream" {
        return None;
    }
    let (from, to) = (o.get("from")?.as_u64()?, o.get("to")?.as_u64()?);
    (from <= to).then_some((from, to))
}

struct Lined {
    stats: FileStats,
    recorded: Vec<(u64, u64)>,
    seqs: SeqScan,
    damage: Damage,
    members: u64,
    tail_start: Option<u64>,
}

fn read_lines(mut lines: Lines, collect: bool) -> Lined {
    let mut stats = FileStats::default();
    let mut recorded = Vec::new();
    let mut seqs = SeqScan::new(collect);
    let mut line = Vec::new();
    let (mut bad, mut first_bad, mut lineno) = (0u64, 0u64, 0u64);
    while lines.next_line(&mut line) {
        lineno += 1;
        let Some(env) = parse_envelope(&line) else {
            if bad == 0 {
                first_bad = lineno;
            }
            bad += 1;
            continue;
        };
        stats.add(env.rx, env.seq, line.len());
        if let Some(s) = env.seq {
            seqs.add(s);
        }
        if let Some(subj) = gap_subject(&line) {
            stats.add_gap(env.rx, subj);
            recorded.extend(stream_gap(env.msg));
        }
    }
    let src = lines.source();
    let mut damage = src.damage.clone();
    if bad > 0 {
        damage.lines += bad;
        damage.note(format!(
            "{bad} line{} not an envelope line (first: line {first_bad})",
            if bad == 1 { " is" } else { "s are" }
        ));
    }
    Lined {
        stats,
        recorded,
        seqs,
        damage,
        members: src.members,
        tail_start: src.tail_start(),
    }
}

/// sha256 of the whole file and of its first `prefix` bytes.
fn sha256s(path: &Path, prefix: u64) -> io::Result<(String, String, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut at_prefix = (prefix == 0).then(|| h.clone());
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if at_prefix.is_none() && len + n as u64 >= prefix {
            let k = usize::try_from(prefix - len).unwrap_or(n);
            h.update(&chunk[..k]);
            at_prefix = Some(h.clone());
            h.update(&chunk[k..]);
        } else {
            h.update(chunk);
        }
        len += n as u64;
    }
    let whole = hex(&h.finalize());
    let prefix = at_prefix.map_or_else(|| whole.clone(), |p| hex(&p.finalize()));
    Ok((whole, prefix, len))
}

/// Scan an archive file (finalized or `.part`): every readable line, as
/// the reader reads it, with the manifest figures, recorded stream gaps and
/// stream sequences; the damage skipped; hashes of the file.
pub fn scan_file(path: &Path) -> Result<ScanResult> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ArchiveError::Config(format!("not a file name: {}", path.display())))?;
    let (codec, stem, part) = Codec::of_file_name(name).ok_or_else(|| {
        ArchiveError::Config(format!("not an archive file name: {}", path.display()))
    })?;
    let final_name = format!("{stem}.{}", codec.extension());
    let mut result = ScanResult {
        codec,
        part,
        gone: false,
        skipped: None,
        file_len: 0,
        sha256: String::new(),
        valid_len: 0,
        damage: Damage::default(),
        error: None,
        entry: FileStats::default().into_entry(final_name, 0, 0, String::new(), codec.name()),
        recorded: Vec::new(),
        segments: Vec::new(),
        duplicates: Vec::new(),
    };
    let open = |collect| -> std::result::Result<Option<Lined>, ReadWarning> {
        // No fallback to the final name: a vanished `.part` is reported gone.
        let lines = open_lines_with(path, None, &|_| true, VERIFY_MEMBER_BYTES)?;
        Ok(lines.map(|l| read_lines(l, collect)))
    };
    let mut lined = match open(false) {
        Ok(Some(l)) => l,
        Ok(None) => {
            result.gone = true;
            return Ok(result);
        }
        Err(w) => {
            result.gone = !path.exists() && path.symlink_metadata().is_err();
            result.skipped = Some(w.reason);
            return Ok(result);
        }
    };
    if lined.seqs.failed() {
        // Out of stream order: read again keeping every key.
        match open(true) {
            Ok(Some(again)) => lined.seqs = again.seqs,
            Ok(None) | Err(_) => {
                result.gone = true;
                return Ok(result);
            }
        }
    }
    let valid_len = lined.tail_start.unwrap_or(u64::MAX);
    let (sha256, sha_valid, file_len) = match sha256s(path, valid_len) {
        Ok(x) => x,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            result.gone = true;
            return Ok(result);
        }
        Err(e) => return Err(ArchiveError::io_path("reading", path, e)),
    };
    let valid_len = valid_len.min(file_len);
    let (segments, duplicates) = lined.seqs.finish();
    result.error = (!lined.damage.is_clean()).then(|| lined.damage.reason());
    result.file_len = file_len;
    result.sha256 = sha256;
    result.valid_len = valid_len;
    result.entry = lined.stats.into_entry(
        result.entry.name,
        valid_len,
        lined.members,
        sha_valid,
        codec.name(),
    );
    result.damage = lined.damage;
    result.recorded = lined.recorded;
    result.segments = segments;
    result.duplicates = duplicates;
    Ok(result)
}

/// Lower-case hex of `bytes` (a digest).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}
