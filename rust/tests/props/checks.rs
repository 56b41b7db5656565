//! The invariants of the parser boundary (see `parser_props.rs`).

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use ssmd_core::json::{self, Ty};
use ssmd_core::model::{Class, Venue};
use ssmd_core::normalize::normalize;
use ssmd_core::processor::{Batch, Entry, Processor, Rx};
use ssmd_core::venues::Setting;

pub const CONN: &str = "prop";
pub const RX: i64 = 1_700_000_000_000_000_000;

/// Fixture directory (module id) of a venue.
pub fn dir(venue: Venue) -> &'static str {
    match venue {
        Venue::Kalshi => "kalshi",
        Venue::Kraken => "kraken",
        Venue::KrakenFutures => "kraken_futures",
        Venue::Polymarket => "polymarket",
    }
}

pub fn slot(venue: Venue) -> usize {
    Venue::ALL
        .iter()
        .position(|&v| v == venue)
        .expect("venue in Venue::ALL")
}

/// The raw fixture frames of a venue, one per non-empty line, in file order.
pub fn fixtures(venue: Venue) -> &'static [Vec<u8>] {
    static ALL: OnceLock<Vec<Vec<Vec<u8>>>> = OnceLock::new();
    &ALL.get_or_init(|| Venue::ALL.iter().map(|&v| load(v)).collect())[slot(venue)]
}

pub fn load(venue: Venue) -> Vec<Vec<u8>> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir(venue));
    let mut files: Vec<_> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("ws_")
                && name.ends_with(".jsonl")
                && !name.ends_with(".expected.jsonl")
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for line in data.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                out.push(line.to_vec());
            }
        }
    }
    assert!(!out.is_empty(), "no fixture frames in {}", d.display());
    out
}

pub fn processor(venue: Venue) -> Processor {
    let mut p = Processor::new(venue, CONN, "prod");
    for (series, category) in [("KXBTCD", "Crypto"), ("FED", "Economics")] {
        // only Kalshi has categories; the others refuse the setting
        let r = p.configure(Setting::Category { series, category });
        assert_eq!(r.is_ok(), venue == Venue::Kalshi);
    }
    p
}

pub fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes)", &s[..end], b.len())
    } else {
        s.into_owned()
    }
}

/// A frame whose `Debug` form is readable in a shrunk failure.
#[derive(Clone)]
pub struct Frame(pub Vec<u8>);

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// `b` with `\n` and `\r` replaced by spaces (what the envelope does to
/// whitespace line breaks).
pub fn one_line(b: &[u8]) -> Vec<u8> {
    b.iter()
        .map(|&c| if c == b'\n' || c == b'\r' { b' ' } else { c })
        .collect()
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Standard base64 with padding (the inverse of the envelope's encoder).
pub fn unbase64(s: &str) -> Option<Vec<u8>> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let s = s.as_bytes();
    if s.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for chunk in s.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &chunk[..4 - pad] {
            let d = A.iter().position(|&a| a == c)?;
            n = (n << 6) | u32::try_from(d).ok()?;
        }
        n <<= 6 * pad;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

/// One subject token: what a bus accepts as a literal token (docs/bus.md):
/// non-empty, at most 128 bytes, no wildcard, separator, whitespace, control
/// character, quote or backslash.
pub fn token_ok(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= ssmd_core::subject::MAX_TOKEN_BYTES
        && t.chars().all(|c| {
            !(c.is_whitespace()
                || c.is_control()
                || matches!(c, '.' | '*' | '>' | '/' | '"' | '\\'))
        })
}

/// Everything one archived entry must satisfy.
pub fn check_entry(
    venue: Venue,
    b: &Batch,
    e: &Entry,
    frames: &[&[u8]],
    first_frame: u64,
) -> Result<(), TestCaseError> {
    let line = b.line(e);
    let msg = b.msg(e);
    let ctx = || format!("venue {venue:?}, class {:?}, line {}", e.class, show(line));
    prop_assert!(
        line.last() == Some(&b'\n'),
        "line does not end in a newline: {}",
        ctx()
    );
    let body = &line[..line.len() - 1];
    // The archive and the bus are JSONL: a raw line break inside the line
    // splits it (see `bug_raw_line_break_in_frame_splits_the_archived_line`).
    prop_assert!(
        !body.contains(&b'\n') && !body.contains(&b'\r'),
        "raw line break inside an archived line: {}",
        ctx()
    );
    let env = json::parse(body).map_err(|err| {
        TestCaseError::fail(format!("invalid JSON line ({}): {}", err.reason, ctx()))
    })?;
    prop_assert_eq!(env.ty, Ty::Object, "{}", ctx());
    let [rx, conn, subj, m] = env.get_many(["rx", "conn", "subj", "msg"]);
    prop_assert!(rx.is_some_and(|v| v.ty == Ty::Number), "{}", ctx());
    let conn = conn.and_then(|v| v.str());
    prop_assert_eq!(conn.as_deref(), Some(CONN), "{}", ctx());
    let subj = subj.and_then(|v| v.str());
    prop_assert_eq!(subj.as_deref(), Some(b.subject(e)), "{}", ctx());
    prop_assert_eq!(m.map(|v| v.raw), Some(msg), "{}", ctx());

    let subject = b.subject(e);
    let prefix = format!("prod.{}.", venue.as_str());
    prop_assert!(subject.starts_with(&prefix), "subject {subject}: {}", ctx());
    prop_assert!(
        subject.split('.').all(token_ok),
        "empty or wildcard token in subject {subject:?}: {}",
        ctx()
    );
    prop_assert!(
        subject.contains(&format!(".json.{}.", b.kind(e))),
        "kind {:?} not in subject {subject}",
        b.kind(e)
    );
    prop_assert!(
        e.frame >= first_frame && e.frame < first_frame + frames.len() as u64,
        "frame ordinal {} outside the batch",
        e.frame
    );

    match e.class {
        Class::Malformed => {
            prop_assert_eq!(b.kind(e), "malformed");
            let v: serde_json::Value = serde_json::from_slice(msg)
                .map_err(|err| TestCaseError::fail(format!("malformed msg: {err}: {}", ctx())))?;
            prop_assert_eq!(v.get("ssmd").and_then(|s| s.as_str()), Some("malformed"));
            prop_assert!(v.get("error").is_some_and(serde_json::Value::is_string));
            let raw = match (v.get("raw"), v.get("raw_b64")) {
                (Some(serde_json::Value::String(s)), None) => s.as_bytes().to_vec(),
                (None, Some(serde_json::Value::String(s))) => unbase64(s).ok_or_else(|| {
                    TestCaseError::fail(format!("raw_b64 is not base64: {}", ctx()))
                })?,
                _ => return Err(TestCaseError::fail(format!("no raw bytes: {}", ctx()))),
            };
            prop_assert!(
                frames.iter().any(|f| contains(f, &raw)),
                "malformed raw bytes {} are not in any input frame",
                show(&raw)
            );
        }
        Class::Data | Class::Unknown => {
            // verbatim, except that raw line breaks between JSON tokens become
            // spaces so an archived message stays on one line
            prop_assert!(
                frames.iter().any(|f| contains(&one_line(f), msg)),
                "msg is not a verbatim slice of an input frame: {}",
                ctx()
            );
        }
        Class::Status => {
            prop_assert_eq!(b.kind(e), "status");
            let v: serde_json::Value = serde_json::from_slice(msg)
                .map_err(|err| TestCaseError::fail(format!("status msg: {err}: {}", ctx())))?;
            prop_assert!(
                v.get("ssmd").is_some_and(serde_json::Value::is_string),
                "{}",
                ctx()
            );
        }
        Class::Control => {
            return Err(TestCaseError::fail(format!(
                "control entry archived: {}",
                ctx()
            )))
        }
    }
    Ok(())
}

/// `normalize` on one input: no panic, one valid JSON line per counted record.
pub fn check_normalize(venue: Venue, input: &[u8]) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    let n = normalize(venue, input, &mut out);
    let lines: Vec<&[u8]> = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    prop_assert!(
        out.is_empty() || out.ends_with(b"\n"),
        "normalize output does not end in a newline: {}",
        show(&out)
    );
    prop_assert_eq!(
        lines.len(),
        n,
        "normalize({:?}) counted {} records but wrote {} lines for {}",
        venue,
        n,
        lines.len(),
        show(input)
    );
    for l in lines {
        prop_assert!(
            json::parse(l).is_ok(),
            "normalize({:?}) wrote an invalid JSON line {} for {}",
            venue,
            show(l),
            show(input)
        );
    }
    Ok(())
}

/// Process `frames` in one batch on a fresh processor and check every invariant.
pub fn check_batch<F: AsRef<[u8]>>(venue: Venue, frames: &[F]) -> Result<Batch, TestCaseError> {
    let refs: Vec<&[u8]> = frames.iter().map(AsRef::as_ref).collect();
    let rx: Vec<i64> = (0..frames.len()).map(|i| RX + i as i64).collect();

    let mut p = processor(venue);
    // a little history first, so that frame ordinals do not start at zero
    let warm = p.process(&[b"{}"], Rx::All(RX));
    prop_assert_eq!(warm.frames, 1);
    let before = p.counters.clone();
    let first_frame = p.frame_no();
    let b = p.process(&refs, Rx::Each(&rx));
    let c = &p.counters;

    prop_assert_eq!(b.frames, frames.len());
    prop_assert_eq!(c.frames - before.frames, frames.len() as u64);
    prop_assert_eq!(p.frame_no() - first_frame, frames.len() as u64);
    let bytes: usize = refs.iter().map(|f| f.len()).sum();
    prop_assert_eq!(c.bytes - before.bytes, bytes as u64);
    let count = |class: Class| b.entries.iter().filter(|e| e.class == class).count() as u64;
    prop_assert_eq!(c.malformed - before.malformed, count(Class::Malformed));
    prop_assert_eq!(c.data - before.data, count(Class::Data));
    prop_assert_eq!(c.unknown - before.unknown, count(Class::Unknown));
    prop_assert_eq!(c.status - before.status, count(Class::Status));
    prop_assert_eq!(c.control - before.control, b.controls.len() as u64);
    prop_assert_eq!(c.resyncs - before.resyncs, b.resyncs.len() as u64);

    let mut end = 0;
    let mut last = (first_frame, 0u32);
    for e in &b.entries {
        prop_assert_eq!(e.line.0, end, "entries do not tile the buffer");
        end = e.line.1;
        prop_assert!((e.frame, e.index) >= last, "entries out of frame order");
        last = (e.frame, e.index);
        check_entry(venue, &b, e, &refs, first_frame)?;
        check_normalize(venue, b.msg(e))?;
    }
    prop_assert_eq!(end, b.buf.len(), "bytes in the buffer outside any entry");
    for (_, raw) in &b.controls {
        prop_assert!(
            refs.iter().any(|f| contains(f, raw)),
            "control bytes {} are not in any input frame",
            show(raw)
        );
    }

    // The same frames one call each: same lines, controls and resyncs, and
    // no frame comes back with nothing.
    let mut q = processor(venue);
    q.process(&[b"{}"], Rx::All(RX));
    let mut buf = Vec::new();
    let mut controls = Vec::new();
    let mut resyncs = Vec::new();
    for (i, f) in refs.iter().enumerate() {
        let one = q.process(&[f], Rx::All(rx[i]));
        prop_assert!(
            !one.entries.is_empty() || !one.controls.is_empty(),
            "frame lost (no entry, no control report): venue {:?}, frame {}",
            venue,
            show(f)
        );
        buf.extend_from_slice(&one.buf);
        controls.extend(one.controls);
        resyncs.extend(one.resyncs);
        check_normalize(venue, f)?;
    }
    prop_assert!(buf == b.buf, "batching changed the archived lines");
    prop_assert_eq!(&controls, &b.controls);
    prop_assert_eq!(&resyncs, &b.resyncs);
    prop_assert_eq!(&q.counters, &p.counters);
    Ok(b)
}

/// Case count, and no regression files in the source tree: a failure prints
/// its shrunk input, which belongs in `nasty_frames_on_every_venue` or a
/// `bug_*` test below.
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

pub fn run(venue: Venue, frames: &[Vec<u8>]) -> Batch {
    check_batch(venue, frames).unwrap_or_else(|e| panic!("{venue:?}: {e}"))
}
