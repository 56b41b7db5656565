//! Reading damaged files (the recovering reader, `archive/recover/`),
//! through the merge reader and the counter.
use super::*;
use flate2::write::GzEncoder;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const T0: u64 = 1_709_251_200_000_000_000;

fn line(i: u64) -> String {
    format!(
        "{{\"rx\":{},\"conn\":\"c1\",\"subj\":\"prod.kraken.json.trade.BTC_USD\",\"msg\":{{\"i\":{i},\"pad\":\"{}\"}}}}\n",
        T0 + i,
        "x".repeat((i * 37 % 200) as usize)
    )
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zst(data: &[u8]) -> Vec<u8> {
    let mut c = zstd::bulk::Compressor::new(1).unwrap();
    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .unwrap();
    c.compress(data).unwrap()
}

/// `members` members of `per` lines each: (file bytes, member offsets, lines per member).
fn members(codec: Codec, members: u64, per: u64) -> (Vec<u8>, Vec<usize>, Vec<Vec<String>>) {
    let mut bytes = Vec::new();
    let mut offsets = Vec::new();
    let mut lines = Vec::new();
    for m in 0..members {
        let ls: Vec<String> = (m * per..(m + 1) * per).map(line).collect();
        offsets.push(bytes.len());
        let data = ls.concat();
        bytes.extend(match codec {
            Codec::Gzip => gz(data.as_bytes()),
            Codec::Zstd => zst(data.as_bytes()),
        });
        lines.push(ls);
    }
    offsets.push(bytes.len());
    (bytes, offsets, lines)
}

fn read(path: &Path) -> (Vec<String>, Option<ReadWarning>, Damage) {
    let mut lines = open_lines(path, None, &|_| false).unwrap().unwrap();
    let mut out = Vec::new();
    let mut l = Vec::new();
    while lines.next_line(&mut l) {
        out.push(String::from_utf8(l.clone()).unwrap());
    }
    let d = lines.source().damage.clone();
    (out, ReadWarning::from_damage(path, &d), d)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

fn flatten(ls: &[Vec<String>]) -> Vec<String> {
    ls.iter().flatten().cloned().collect()
}

#[test]
fn a_corrupt_member_is_skipped_to_the_next() {
    for codec in [Codec::Gzip, Codec::Zstd] {
        let dir = tempfile::tempdir().unwrap();
        let (mut bytes, off, lines) = members(codec, 5, 40);
        // 16 flipped bytes in the middle of member 2.
        let mid = (off[2] + off[3]) / 2;
        for b in &mut bytes[mid..mid + 16] {
            *b ^= 0x5a;
        }
        let p = write(dir.path(), &format!("0000-a.{}", codec.extension()), &bytes);
        let (got, w, d) = read(&p);
        let want: Vec<String> = [&lines[0], &lines[1], &lines[3], &lines[4]]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        assert_eq!(got, want, "{codec}");
        let w = w.expect("a warning");
        assert_eq!((w.members, w.bytes), (1, (off[3] - off[2]) as u64), "{w:?}");
        assert!(
            w.reason.contains(&format!("at offset {}", off[2])),
            "{}",
            w.reason
        );
        assert!(w.message().starts_with(&p.display().to_string()));
        assert_eq!(d.torn_tail, 0);
    }
}

#[test]
fn a_truncated_file_loses_only_its_torn_member() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, off, lines) = members(Codec::Gzip, 4, 50);
    let cut = (off[3] + off[4]) / 2;
    let p = write(dir.path(), "0000-a.jsonl.gz", &bytes[..cut]);
    let (got, w, _) = read(&p);
    assert_eq!(got, flatten(&lines[..3]));
    let w = w.expect("a warning");
    assert_eq!(
        w.reason,
        format!(
            "the file ends inside the gzip member at offset {} (incomplete deflate stream)",
            off[3]
        )
    );
    assert_eq!((w.members, w.bytes, w.lines), (1, (cut - off[3]) as u64, 0));

    // Members handed out as they decode (the original-ssmd reader): the
    // torn member's complete lines stay.
    let (got, w) = read_limited(&p, 0);
    assert_eq!(got[..150], flatten(&lines[..3])[..]);
    let tail = &got[150..];
    assert!(!tail.is_empty() && tail.len() < 50);
    assert_eq!(tail, &lines[3][..tail.len()]);
    let w = w.unwrap();
    assert!(w.reason.contains("bytes of it were read"), "{}", w.reason);
    assert_eq!((w.members, w.lines), (1, 1));

    // A `.part` ending inside a member: the torn tail goes quietly.
    let p = write(dir.path(), "0000-b.jsonl.gz.part", &bytes[..cut]);
    let (got, w, d) = read(&p);
    assert_eq!(got, flatten(&lines[..3]));
    assert!(w.is_none(), "{w:?}");
    assert_eq!(d.torn_tail, (cut - off[3]) as u64);
}

#[test]
fn garbage_around_members_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, off, lines) = members(Codec::Gzip, 3, 20);
    let mut damaged = b"junk before".to_vec();
    damaged.extend_from_slice(&bytes[..off[1]]);
    damaged.extend_from_slice(&[0u8; 4096]); // a zeroed block
    damaged.extend_from_slice(&bytes[off[1]..]);
    let after = b"\x1f\x8b\x08\x00 and more junk after";
    damaged.extend_from_slice(after);
    let p = write(dir.path(), "0000-a.jsonl.gz", &damaged);
    let (got, w, _) = read(&p);
    assert_eq!(got, flatten(&lines));
    let w = w.unwrap();
    assert_eq!(w.members, 1); // the fake header at the end
    assert_eq!(w.bytes, 11 + 4096 + after.len() as u64);
    assert!(
        w.reason.contains("not a member at offset 0"),
        "{}",
        w.reason
    );
}

#[test]
fn empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "0000-a.jsonl.gz", b"");
    let (got, w, _) = read(&p);
    assert!(got.is_empty());
    assert_eq!(w.unwrap().reason, "empty file");
    let p = write(dir.path(), "0000-b.jsonl.zst.part", b"");
    let (got, w, _) = read(&p);
    assert!(got.is_empty() && w.is_none());
}

#[test]
fn lines_never_span_a_break() {
    // Members cut in the middle of lines (as bgzip does): whole lines come
    // back across members, and the partial lines around a bad member go.
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..30).map(line).collect();
    let cuts = [0, 1000, 2000, 3000, text.len()];
    let mut bytes = Vec::new();
    let mut off = Vec::new();
    for w in cuts.windows(2) {
        off.push(bytes.len());
        bytes.extend(gz(&text.as_bytes()[w[0]..w[1]]));
    }
    off.push(bytes.len());
    let p = write(dir.path(), "0000-a.jsonl.gz", &bytes);
    assert_eq!(read(&p).0.concat(), text);

    let mut bad = bytes.clone();
    bad[off[2] + 20] ^= 0xff;
    bad[off[2] + 21] ^= 0xff;
    let p = write(dir.path(), "0000-b.jsonl.gz", &bad);
    let (got, w, _) = read(&p);
    let w = w.unwrap();
    assert_eq!((w.members, w.lines), (1, 1));
    // Every line returned is a line written, in order; the one cut by the
    // break before the bad member is gone, and the fragment after it comes
    // back as a line of its own (not an envelope: the reader drops it).
    let written: Vec<String> = (0..30).map(line).collect();
    let whole: Vec<&String> = got.iter().filter(|l| written.contains(l)).collect();
    assert!(got.len() - whole.len() <= 1);
    assert!(whole
        .windows(2)
        .all(|w| text.find(w[0].as_str()) < text.find(w[1].as_str())));
    assert!(whole.len() < 30);
}

fn read_limited(path: &Path, limit: usize) -> (Vec<String>, Option<ReadWarning>) {
    let file = fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    let src = MemberReader::new(file, len, FileCodec::Gzip, false).with_verify_limit(limit);
    let mut lines = Lines::new(src);
    let mut out = Vec::new();
    let mut l = Vec::new();
    while lines.next_line(&mut l) {
        out.push(String::from_utf8_lossy(&l).into_owned());
    }
    let w = ReadWarning::from_damage(path, &lines.source().damage);
    (out, w)
}

#[test]
fn a_large_member_is_handed_out_as_it_decodes() {
    let dir = tempfile::tempdir().unwrap();
    // One member bigger than the verification bound, then a small one.
    let limit = 64 << 10;
    let big: String = (0..2000).map(line).collect();
    assert!(big.len() > 3 * limit);
    let small = line(9_999_999);
    let mut bytes = gz(big.as_bytes());
    let first = bytes.len();
    bytes.extend(gz(small.as_bytes()));
    let p = write(dir.path(), "0000-a.jsonl.gz", &bytes);
    let (got, w) = read_limited(&p, limit);
    assert!(w.is_none());
    assert_eq!(got.concat(), big.clone() + &small);

    // Corrupt near its end: what was handed out stays, the rest goes.
    let mut bad = bytes.clone();
    bad[first - 100] ^= 0xff;
    let p = write(dir.path(), "0000-b.jsonl.gz", &bad);
    let (got, w) = read_limited(&p, limit);
    let w = w.unwrap();
    assert_eq!(w.members, 1);
    assert!(w.reason.contains("bytes of it were read"), "{}", w.reason);
    assert_eq!(got.last().unwrap(), &small);
    // Handed out unchecked: up to the damage the lines are the written ones
    // (after it, the decoder may have put out changed bytes before failing).
    let written: Vec<String> = (0..2000).map(line).collect();
    let same = got.iter().zip(&written).take_while(|(a, b)| a == b).count();
    assert!(same > 1500, "{same}");
}

#[cfg(unix)]
#[test]
fn non_regular_files_are_skipped_unopened() {
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("kraken/2024-03-01");
    fs::create_dir_all(&day).unwrap();
    let (bytes, _, lines) = members(Codec::Gzip, 2, 10);
    fs::write(day.join("0000-a.jsonl.gz"), &bytes).unwrap();
    let fifo = day.join("0000-b.jsonl.gz");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    fs::create_dir(day.join("0000-c.jsonl.gz")).unwrap();
    std::os::unix::fs::symlink(day.join("nowhere"), day.join("0000-d.jsonl.gz")).unwrap();
    fs::write(day.join("0000-e.jsonl.gz"), b"").unwrap();

    let files = list_files(dir.path(), None, None, None, true).unwrap();
    assert_eq!(files.len(), 5);
    let mut r = MergeReader::open(&files, ReadFilter::default()).unwrap();
    let mut out = Vec::new();
    while r.read_chunk(&mut out, 100, usize::MAX).unwrap() > 0 {}
    assert_eq!(String::from_utf8(out).unwrap(), flatten(&lines).concat());
    let reasons: Vec<(String, String)> = r
        .warnings()
        .iter()
        .map(|w| {
            let name = w.path.file_name().unwrap().to_string_lossy().into_owned();
            (name, w.reason.clone())
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("0000-b.jsonl.gz".into(), "skipped: a FIFO".into()),
            ("0000-c.jsonl.gz".into(), "skipped: a directory".into()),
            (
                "0000-d.jsonl.gz".into(),
                "skipped: a symbolic link to nothing".into()
            ),
            ("0000-e.jsonl.gz".into(), "empty file".into()),
        ]
    );
    let counts = count_lines(&files).unwrap();
    assert_eq!(counts.lines, 20);
    assert_eq!(counts.warnings, r.warnings());
}

#[test]
fn merge_reads_past_damage_and_reports_once_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("kraken/2024-03-01");
    fs::create_dir_all(&day).unwrap();
    let (mut bytes, off, lines) = members(Codec::Gzip, 4, 25);
    fs::write(day.join("0000-a.jsonl.gz"), &bytes).unwrap();
    bytes[off[1] + 30] ^= 0x10;
    fs::write(day.join("0000-b.jsonl.gz"), &bytes[..off[3] + 10]).unwrap();
    // A line that is not an envelope, in a member that decodes.
    let mut junk = lines[0][..3].concat();
    junk.push_str("not json\n");
    fs::write(day.join("0000-c.jsonl.gz"), gz(junk.as_bytes())).unwrap();
    let files = list_files(dir.path(), None, None, None, false).unwrap();
    let mut r = MergeReader::open(&files, ReadFilter::default()).unwrap();
    let mut out = Vec::new();
    while r.read_chunk(&mut out, 7, usize::MAX).unwrap() > 0 {}
    let got = String::from_utf8(out).unwrap();
    let mut want: Vec<String> = flatten(&lines);
    want.extend(lines[0].iter().cloned());
    want.extend(lines[2].iter().cloned());
    want.extend(lines[0][..3].iter().cloned());
    want.sort_by_key(|l| parse_rx_seq(l.as_bytes()).unwrap().rx);
    let mut got_sorted: Vec<&str> = got.split_inclusive('\n').collect();
    let rxs: Vec<u64> = got_sorted
        .iter()
        .map(|l| parse_rx_seq(l.as_bytes()).unwrap().rx)
        .collect();
    assert!(rxs.windows(2).all(|w| w[0] <= w[1]), "rx order");
    got_sorted.sort_unstable();
    let mut want_sorted: Vec<&str> = want.iter().map(String::as_str).collect();
    want_sorted.sort_unstable();
    assert_eq!(got_sorted, want_sorted);
    let w = r.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].path.ends_with("0000-b.jsonl.gz") || w[1].path.ends_with("0000-b.jsonl.gz"));
    let c = w
        .iter()
        .find(|w| w.path.ends_with("0000-c.jsonl.gz"))
        .unwrap();
    assert_eq!(c.lines, 1);
    assert_eq!(c.reason, "1 line is not an envelope line (first: line 4)");
    let counts = count_lines(&files).unwrap();
    assert_eq!(counts.lines as usize, want.len());
}

#[test]
fn a_part_finalized_meanwhile_is_read_under_its_final_name() {
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("kraken/2024-03-01");
    fs::create_dir_all(&day).unwrap();
    let (bytes, _, lines) = members(Codec::Gzip, 2, 5);
    fs::write(day.join("0000-a.jsonl.gz.part"), &bytes).unwrap();
    let files = list_files(dir.path(), None, None, None, true).unwrap();
    fs::rename(
        day.join("0000-a.jsonl.gz.part"),
        day.join("0000-a.jsonl.gz"),
    )
    .unwrap();
    let counts = count_lines(&files).unwrap();
    assert_eq!(counts.lines, 10);
    assert!(counts.warnings.is_empty());

    // Both names of one file (a finalize cut between link and unlink): once.
    fs::hard_link(
        day.join("0000-a.jsonl.gz"),
        day.join("0000-a.jsonl.gz.part"),
    )
    .unwrap();
    let files = list_files(dir.path(), None, None, None, true).unwrap();
    assert_eq!(files.len(), 2);
    let counts = count_lines(&files).unwrap();
    assert_eq!(counts.lines, 10);
    let mut r = MergeReader::open(&files, ReadFilter::default()).unwrap();
    let mut out = Vec::new();
    while r.read_chunk(&mut out, 100, usize::MAX).unwrap() > 0 {}
    assert_eq!(String::from_utf8(out).unwrap(), flatten(&lines).concat());
}

#[test]
fn repair_cuts_only_a_damaged_tail_and_scan_agrees_with_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = WriterConfig::new(dir.path(), "kraken", "h1");
    c.fsync = false;
    let mut w = ArchiveWriter::open(c.clone()).unwrap();
    for m in 0..4 {
        w.write(
            (m * 10..(m + 1) * 10)
                .map(line)
                .collect::<String>()
                .as_bytes(),
        )
        .unwrap();
        w.flush().unwrap();
    }
    let part = w.abandon();
    let mut bytes = fs::read(&part).unwrap();
    let mut ends = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        std::io::Read::read_to_end(&mut d, &mut Vec::new()).unwrap();
        rest = d.into_inner();
        ends.push(bytes.len() - rest.len());
    }
    bytes[ends[0] + 20] ^= 0x08; // member 1
    let kept = bytes.clone();
    bytes.extend_from_slice(&gz(line(99).as_bytes())[..15]); // a torn fifth member
    fs::write(&part, &bytes).unwrap();

    let scan = scan_file(&part).unwrap();
    assert_eq!(scan.valid_len, kept.len() as u64);
    assert_eq!((scan.entry.lines, scan.entry.members), (30, 3));
    assert_eq!(scan.damage.members, 1);
    assert_eq!(scan.damage.torn_tail, 15);

    // Repair keeps the good members after the damaged one and cuts the tail.
    drop(ArchiveWriter::open(c).unwrap());
    let files = list_files(dir.path(), None, None, None, true).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(fs::read(&files[0]).unwrap(), kept);
    let m = read_manifest(dir.path(), "kraken", Date::parse("2024-03-01").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!((m.files[0].lines, m.files[0].members), (30, 3));
    let (got, w, _) = read(&files[0]);
    let want: Vec<String> = (0..10).chain(20..40).map(line).collect();
    assert_eq!(got, want);
    let w = w.unwrap();
    assert_eq!((w.members, w.bytes), (1, (ends[1] - ends[0]) as u64));
    let scan = scan_file(&files[0]).unwrap();
    assert_eq!(scan.entry.lines, got.len() as u64);
    assert_eq!(scan.error.as_deref(), Some(w.reason.as_str()));
}

/// Every line and every figure of the damage, read with the whole-member
/// fast path, then with the streaming decoder only.
fn read_both(path: &Path, part: bool) -> [(Vec<String>, Damage); 2] {
    [false, true].map(|streaming| {
        let file = fs::File::open(path).unwrap();
        let len = file.metadata().unwrap().len();
        let mut src = MemberReader::new(file, len, FileCodec::Gzip, part);
        if streaming {
            src = src.streaming_only();
        }
        let mut lines = Lines::new(src);
        let (mut out, mut l) = (Vec::new(), Vec::new());
        while lines.next_line(&mut l) {
            out.push(String::from_utf8_lossy(&l).into_owned());
        }
        (out, lines.source().damage.clone())
    })
}

#[test]
fn the_whole_member_path_reads_damage_as_the_streaming_path_does() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, offsets, _) = members(Codec::Gzip, 12, 40);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for case in 0..300 {
        let mut bytes = clean.clone();
        match case % 5 {
            0 => {
                // a flipped bit
                let i = next(bytes.len());
                bytes[i] ^= 1 << next(8);
            }
            1 => bytes.truncate(next(bytes.len())), // cut short
            2 => {
                // garbage between members, or at the start of one
                let at = offsets[next(offsets.len())];
                let junk: Vec<u8> = (0..next(300)).map(|i| (i * 7) as u8).collect();
                bytes.splice(at..at, junk);
            }
            3 => {
                // a member's trailer (CRC-32 or length) changed
                let end = offsets[1 + next(offsets.len() - 1)];
                bytes[end - 1 - next(8)] ^= 0x40;
            }
            _ => {
                for _ in 0..3 {
                    let i = next(bytes.len());
                    bytes[i] = bytes[i].wrapping_add(1);
                }
            }
        }
        let p = write(dir.path(), &format!("{case:04}-x.jsonl.gz"), &bytes);
        for part in [false, true] {
            let [whole, streaming] = read_both(&p, part);
            assert_eq!(whole, streaming, "case {case}, part {part}");
        }
    }
    let p = write(dir.path(), "clean.jsonl.gz", &clean);
    let [whole, streaming] = read_both(&p, false);
    assert_eq!(whole, streaming);
    assert!(whole.1.is_clean() && whole.0.len() == 12 * 40);
}

#[test]
fn the_whole_member_path_agrees_across_window_reloads_and_header_crcs() {
    // Members of ~1 MiB compressed (random hex compresses about 2:1), so that
    // the 4 MiB window is reloaded and members cross its end; damage placed
    // in members on both sides of a reload.
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut file = Vec::new();
    let mut offsets = Vec::new();
    for m in 0..6u64 {
        offsets.push(file.len());
        let lines: String = (0..33_000)
            .map(|i| {
                let (a, b, c) = (rnd(), rnd(), rnd());
                format!("{{\"m\":{m},\"i\":{i},\"h\":\"{a:016x}{b:016x}{c:016x}\"}}\n")
            })
            .collect();
        file.extend(gz(lines.as_bytes()));
    }
    offsets.push(file.len());
    // more than two windows (4 MiB each) of compressed bytes
    assert!(file.len() > 8 << 20, "{}", file.len());
    for (case, m) in [(0, 1usize), (1, 3), (2, 5)] {
        let mut bytes = file.clone();
        let mid = (offsets[m] + offsets[m + 1]) / 2;
        bytes[mid] ^= 0x08;
        let p = write(dir.path(), &format!("big{case}.jsonl.gz"), &bytes);
        let [whole, streaming] = read_both(&p, false);
        assert_eq!(whole.1.members, 1, "case {case}");
        assert_eq!(whole, streaming, "case {case}");
    }
    // a header CRC (FHCRC) that does not match: the streaming decoder says so,
    // and the fast path leaves such a member to it
    let data = b"{\"x\":1}\n".repeat(100);
    let body = gz(&data);
    let mut hc = body[..10].to_vec();
    hc[3] |= 0x02;
    hc.extend([0xde, 0xad]); // the header's CRC-16, wrong
    hc.extend(&body[10..]);
    let mut bytes = hc;
    bytes.extend(gz(&data));
    let p = write(dir.path(), "fhcrc.jsonl.gz", &bytes);
    let [whole, streaming] = read_both(&p, false);
    assert_eq!(whole, streaming);
    assert_eq!(whole.1.members, 1);
    assert_eq!(whole.0.len(), 100);
}
