//! End-to-end tests of the writer, repair, manifest and reader.
use super::*;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// 2024-03-01T00:00:00Z in ns.
const T0: u64 = 1_709_251_200_000_000_000;
const SEC: u64 = 1_000_000_000;

fn line(rx: u64, subj: &str, msg: &str) -> String {
    format!("{{\"rx\":{rx},\"conn\":\"c1\",\"subj\":\"{subj}\",\"msg\":{msg}}}\n")
}

fn trade(rx: u64, i: u64) -> String {
    line(
        rx,
        "prod.kraken.json.trade.BTC_USD",
        &format!(
            "{{\"price\":\"{}.{}\",\"qty\":\"0.{i:04}\"}}",
            60_000 + i % 97,
            i % 10
        ),
    )
}

fn cfg(root: &Path, writer: &str) -> WriterConfig {
    let mut c = WriterConfig::new(root, "kraken", writer);
    c.fsync = false;
    c
}

fn read_all(files: &[PathBuf], filter: ReadFilter) -> Vec<String> {
    let mut r = MergeReader::open(files, filter).unwrap();
    let mut out = Vec::new();
    while r.read_chunk(&mut out, 7, usize::MAX).unwrap() > 0 {}
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect()
}

fn rx_of(l: &str) -> u64 {
    parse_rx_seq(l.as_bytes()).unwrap().rx
}

fn day() -> Date {
    Date::parse("2024-03-01").unwrap()
}

fn names(root: &Path) -> Vec<String> {
    list_files(root, None, None, None, true)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn round_trip_and_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ArchiveWriter::open(cfg(dir.path(), "h1")).unwrap();
    let mut all = String::new();
    for batch in 0..3u64 {
        let mut data = String::new();
        for i in 0..100 {
            data += &trade(T0 + (batch * 100 + i) * 1000, i);
        }
        assert_eq!(w.write(data.as_bytes()).unwrap(), 100);
        assert_eq!(w.flush().unwrap(), 100);
        all += &data;
    }
    let part = w.current_path().unwrap().to_path_buf();
    assert!(part
        .to_string_lossy()
        .ends_with("kraken/2024-03-01/0000-h1.jsonl.gz.part"));
    let st = w.stats();
    assert_eq!((st.lines_in, st.lines_out, st.members), (300, 300, 3));
    assert_eq!(st.bytes_in, all.len() as u64);
    assert_eq!(w.close().unwrap(), 0);
    assert!(w.write(trade(T0, 1).as_bytes()).is_err());
    assert!(!part.exists());

    let files = list_files(dir.path(), Some("kraken"), None, None, false).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(read_all(&files, ReadFilter::default()).concat(), all);

    let bytes = fs::read(&files[0]).unwrap();
    let mut raw = String::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_string(&mut raw)
        .unwrap();
    assert_eq!(raw, all);

    let m = read_manifest(dir.path(), "kraken", day()).unwrap().unwrap();
    assert_eq!(
        (m.venue.as_str(), m.date.as_str()),
        ("kraken", "2024-03-01")
    );
    let e = &m.files[0];
    assert_eq!(e.name, "0000-h1.jsonl.gz");
    assert_eq!(e.lines, 300);
    assert_eq!(e.members, 3);
    assert_eq!(e.bytes, bytes.len() as u64);
    assert_eq!(e.raw_bytes, all.len() as u64);
    assert_eq!(e.sha256, repair::hex(&Sha256::digest(&bytes)));
    assert_eq!((e.first_rx, e.last_rx), (Some(T0), Some(T0 + 299_000)));
    assert_eq!((e.first_seq, e.last_seq), (None, None));
    assert_eq!(e.codec, "gzip");
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(files[0].parent().unwrap().join(MANIFEST_NAME)).unwrap())
            .unwrap();
    assert!(json["files"][0]["first_seq"].is_null());
    assert_eq!(json["files"][0]["gaps"], serde_json::json!([]));
}

#[test]
fn one_member_per_flush_and_auto_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path(), "h1");
    c.max_buffer_bytes = 2000;
    let mut w = ArchiveWriter::open(c).unwrap();
    let mut data = String::new();
    for i in 0..50 {
        data += &trade(T0 + i, i);
    }
    w.write(data.as_bytes()).unwrap();
    let auto = w.stats().members;
    assert!(auto >= data.len() as u64 / 2000 - 1, "auto-flushed {auto}");
    assert!(w.buffered_bytes() < 2000);
    assert_eq!(w.flush().unwrap(), 50, "lines since the last flush() call");
    assert_eq!(w.flush().unwrap(), 0);
    let part = w.current_path().unwrap().to_path_buf();
    let scan = scan_file(&part).unwrap();
    assert_eq!(scan.entry.members, w.stats().members);
    assert_eq!(scan.entry.lines, 50);
    assert_eq!(scan.valid_len, scan.file_len);
    // Every member is a gzip member of whole lines.
    let bytes = fs::read(&part).unwrap();
    let mut rest = &bytes[..];
    let mut members = 0;
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        let mut s = String::new();
        d.read_to_string(&mut s).unwrap();
        assert!(s.ends_with('\n'));
        rest = d.into_inner();
        members += 1;
    }
    assert_eq!(members, w.stats().members);
    w.close().unwrap();
}

#[test]
fn rotation_at_window_boundary_and_late_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ArchiveWriter::open(cfg(dir.path(), "h1")).unwrap();
    let a = trade(T0 + 899 * SEC + 999_999_999, 1);
    let b = trade(T0 + 900 * SEC, 2);
    let late = trade(T0 + 10 * SEC, 3);
    let c = trade(T0 + 86_400 * SEC + 3600 * SEC, 4);
    w.write(a.as_bytes()).unwrap();
    assert!(w.current_path().unwrap().ends_with("0000-h1.jsonl.gz.part"));
    w.write((b.clone() + &late).as_bytes()).unwrap();
    assert!(w.current_path().unwrap().ends_with("0015-h1.jsonl.gz.part"));
    // The first file was finalized by the rotation.
    assert_eq!(w.stats().files, 1);
    w.write(c.as_bytes()).unwrap();
    assert!(w
        .current_path()
        .unwrap()
        .ends_with("kraken/2024-03-02/0100-h1.jsonl.gz.part"));
    w.close().unwrap();
    assert_eq!(
        names(dir.path()),
        ["0000-h1.jsonl.gz", "0015-h1.jsonl.gz", "0100-h1.jsonl.gz"]
    );
    let m = read_manifest(dir.path(), "kraken", day()).unwrap().unwrap();
    assert_eq!(m.files.len(), 2);
    let f = m.file("0015-h1.jsonl.gz").unwrap();
    assert_eq!(f.lines, 2);
    assert_eq!(
        (f.first_rx, f.last_rx),
        (Some(rx_of(&late)), Some(rx_of(&b)))
    );
    let files = list_files(dir.path(), None, None, Some(day()), false).unwrap();
    assert_eq!(files.len(), 2);
    // The merge compares file heads only: the late line keeps its place
    // after `b` in its file.
    assert_eq!(read_all(&files, ReadFilter::default()), [a, b, late]);
}

#[test]
fn rotate_if_due() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ArchiveWriter::open(cfg(dir.path(), "h1")).unwrap();
    w.write(trade(T0, 1).as_bytes()).unwrap();
    assert!(!w.rotate_if_due(T0 + 899 * SEC).unwrap());
    assert!(w.rotate_if_due(T0 + 900 * SEC).unwrap());
    assert!(w.current_path().is_none());
    assert_eq!(names(dir.path()), ["0000-h1.jsonl.gz"]);
    w.write(trade(T0 + 5, 1).as_bytes()).unwrap();
    w.close().unwrap();
    assert_eq!(
        names(dir.path()),
        ["0000-h1-01.jsonl.gz", "0000-h1.jsonl.gz"]
    );
}

#[test]
fn suffix_on_restart_in_same_window() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let mut w = ArchiveWriter::open(cfg(dir.path(), "h1")).unwrap();
        w.write(trade(T0 + 60 * SEC, 1).as_bytes()).unwrap();
        w.close().unwrap();
    }
    // A different writer name has its own sequence, and a zstd writer
    // never reuses a gzip stem.
    let mut c = cfg(dir.path(), "h2");
    c.codec = Codec::Zstd;
    let mut w = ArchiveWriter::open(c).unwrap();
    w.write(trade(T0 + 60 * SEC, 1).as_bytes()).unwrap();
    w.close().unwrap();
    let mut c = cfg(dir.path(), "h1");
    c.codec = Codec::Zstd;
    let mut w = ArchiveWriter::open(c).unwrap();
    w.write(trade(T0 + 60 * SEC, 1).as_bytes()).unwrap();
    w.close().unwrap();
    assert_eq!(
        names(dir.path()),
        [
            "0000-h1-01.jsonl.gz",
            "0000-h1-02.jsonl.gz",
            "0000-h1-03.jsonl.zst",
            "0000-h1.jsonl.gz",
            "0000-h2.jsonl.zst"
        ]
    );
    let m = read_manifest(dir.path(), "kraken", day()).unwrap().unwrap();
    assert_eq!(m.files.len(), 5);
}

#[test]
fn one_writer_name_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let w = ArchiveWriter::open(cfg(dir.path(), "h1")).unwrap();
    let err = ArchiveWriter::open(cfg(dir.path(), "h1")).unwrap_err();
    assert!(err.to_string().contains("already open"), "{err}");
    assert!(ArchiveWriter::open(cfg(dir.path(), "h2")).is_ok());
    drop(w);
    assert!(ArchiveWriter::open(cfg(dir.path(), "h1")).is_ok());
}

#[test]
fn config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = |f: &dyn Fn(&mut WriterConfig)| {
        let mut c = cfg(dir.path(), "h1");
        f(&mut c);
        let e = ArchiveWriter::open(c).unwrap_err();
        assert!(e.is_config(), "{e}");
    };
    bad(&|c| c.writer = "a/b".into());
    bad(&|c| c.writer = String::new());
    bad(&|c| c.writer = "shard-01".into());
    bad(&|c| c.venue = "../x".into());
    bad(&|c| c.rotation_secs = 0);
    bad(&|c| c.rotation_secs = 7000);
    bad(&|c| c.rotation_secs = 2 * 86_400);
    bad(&|c| c.level = Some(13));
    bad(&|c| {
        c.codec = Codec::Zstd;
        c.level = Some(99);
    });
    let mut c = cfg(dir.path(), "shard-1");
    c.level = Some(1);
    assert!(ArchiveWriter::open(c).is_ok());
}

#[test]
fn invalid_lines_are_rejected_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ArchiveWriter::open(cfg(dir.path(), "h1")).unwrap();
    let good = trade(T0, 1);
    assert!(matches!(
        w.write(good.trim_end().as_bytes()),
        Err(ArchiveError::InvalidLine(_))
    ));
    let mixed = format!("{good}{{\"a\":1}}\n");
    let e = w.write(mixed.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    assert!(
        w.write(format!("{good}\n").as_bytes()).is_err(),
        "empty line"
    );
    assert_eq!(w.stats().lines_in, 0);
    assert_eq!(w.write(b"").unwrap(), 0);
    w.write(good.as_bytes()).unwrap();
    w.close().unwrap();
}

/// Write `members` flushes of 10 lines, crash, return the part's bytes and
/// the lines of each member.
fn crashed_part(root: &Path, codec: Codec, members: u64) -> (PathBuf, Vec<u8>, Vec<String>) {
    let mut c = cfg(root, "h1");
    c.codec = codec;
    let mut w = ArchiveWriter::open(c).unwrap();
    let mut per_member = Vec::new();
    for m in 0..members {
        let mut data = String::new();
        for i in 0..10 {
            data += &trade(T0 + m * 1000 + i, i);
        }
        w.write(data.as_bytes()).unwrap();
        w.flush().unwrap();
        per_member.push(data);
    }
    let part = w.abandon();
    let bytes = fs::read(&part).unwrap();
    (part, bytes, per_member)
}

fn member_ends(bytes: &[u8], codec: Codec) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = match codec {
            Codec::Gzip => {
                let mut d = flate2::bufread::GzDecoder::new(rest);
                d.read_to_end(&mut Vec::new()).unwrap();
                rest.len() - d.into_inner().len()
            }
            Codec::Zstd => zstd::zstd_safe::find_frame_compressed_size(rest).unwrap(),
        };
        rest = &rest[n..];
        ends.push(bytes.len() - rest.len());
    }
    ends
}

fn check_repair(codec: Codec) {
    let ext = codec.extension();
    // (a) torn last member, (b) garbage tail, (c) nothing valid at all.
    for case in ["torn", "garbage", "empty", "zeros"] {
        let dir = tempfile::tempdir().unwrap();
        let (part, bytes, per_member) = crashed_part(dir.path(), codec, 3);
        let ends = member_ends(&bytes, codec);
        assert_eq!(ends.len(), 3);
        let (content, expect): (Vec<u8>, String) = match case {
            "torn" => (
                bytes[..ends[1] + (ends[2] - ends[1]) / 2].to_vec(),
                per_member[..2].concat(),
            ),
            "garbage" => {
                let mut b = bytes.clone();
                b.extend_from_slice(&bytes[..ends[0]][..7]);
                b.extend_from_slice(b"garbage\x00\x01");
                (b, per_member.concat())
            }
            "zeros" => {
                let mut b = bytes.clone();
                b.extend_from_slice(&[0u8; 4096]);
                (b, per_member.concat())
            }
            _ => (bytes[..ends[0] - 3].to_vec(), String::new()),
        };
        fs::File::create(&part)
            .unwrap()
            .write_all(&content)
            .unwrap();

        let mut c = cfg(dir.path(), "h1");
        c.codec = Codec::Gzip; // repair follows the file's codec, not the config
        let mut w = ArchiveWriter::open(c).unwrap();
        assert!(!part.exists(), "{case}");
        let files = list_files(dir.path(), None, None, None, true).unwrap();
        if expect.is_empty() {
            assert!(files.is_empty(), "{case}: {files:?}");
            assert_eq!(w.stats().repaired, 0);
            continue;
        }
        assert_eq!(w.stats().repaired, 1);
        assert_eq!(files.len(), 1, "{case}");
        assert!(files[0].ends_with(format!("0000-h1.{ext}")), "{case}");
        assert_eq!(
            read_all(&files, ReadFilter::default()).concat(),
            expect,
            "{case}"
        );
        let m = read_manifest(dir.path(), "kraken", day()).unwrap().unwrap();
        let e = m.file(&format!("0000-h1.{ext}")).unwrap();
        assert_eq!(e.lines, expect.lines().count() as u64, "{case}");
        assert_eq!(e.codec, codec.name());
        let fb = fs::read(&files[0]).unwrap();
        assert_eq!(e.bytes, fb.len() as u64);
        assert_eq!(e.sha256, repair::hex(&Sha256::digest(&fb)));
        // The restarted writer takes the next suffix in the same window.
        w.write(trade(T0 + 5, 0).as_bytes()).unwrap();
        assert!(w
            .current_path()
            .unwrap()
            .to_string_lossy()
            .ends_with("0000-h1-01.jsonl.gz.part"));
        w.close().unwrap();
    }
}

#[test]
fn repair_torn_gzip_part() {
    check_repair(Codec::Gzip);
}

#[test]
fn repair_torn_zstd_part() {
    check_repair(Codec::Zstd);
}

#[test]
fn repair_only_own_parts_and_half_finalized() {
    let dir = tempfile::tempdir().unwrap();
    let (part, _, per_member) = crashed_part(dir.path(), Codec::Gzip, 2);
    // Another writer's part stays untouched.
    let other = part.with_file_name("0000-h1x.jsonl.gz.part");
    fs::copy(&part, &other).unwrap();
    // A crash between link and unlink leaves both names of one inode.
    let final_path = part.with_file_name("0000-h1.jsonl.gz");
    fs::hard_link(&part, &final_path).unwrap();
    let w = ArchiveWriter::open(cfg(dir.path(), "h1")).unwrap();
    drop(w);
    assert!(!part.exists());
    assert!(other.exists());
    let files = list_files(dir.path(), None, None, None, false).unwrap();
    assert_eq!(files, [final_path]);
    assert_eq!(
        read_all(&files, ReadFilter::default()).concat(),
        per_member.concat()
    );
    assert_eq!(
        read_manifest(dir.path(), "kraken", day())
            .unwrap()
            .unwrap()
            .files
            .len(),
        1
    );
}

#[test]
fn manifest_merge_by_two_writers_with_seq_and_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = ArchiveWriter::open(cfg(dir.path(), "a")).unwrap();
    let mut b = ArchiveWriter::open(cfg(dir.path(), "b")).unwrap();
    let gap = line(
        T0 + 5,
        "prod.kraken.json.status.conn-1",
        r#"{"ssmd":"gap","expected":3,"got":7}"#,
    );
    let with_seq = |rx: u64, seq: &str| {
        format!("{{\"rx\":{rx},\"seq\":{seq},\"conn\":\"c\",\"subj\":\"prod.kraken.json.book.BTC_USD\",\"msg\":{{}}}}\n")
    };
    a.write((with_seq(T0 + 9, "[12,1]") + &with_seq(T0 + 3, "[12,0]") + &gap).as_bytes())
        .unwrap();
    b.write((with_seq(T0 + 4, "7") + &with_seq(T0 + 8, "9")).as_bytes())
        .unwrap();
    b.close().unwrap();
    a.close().unwrap();
    let m = read_manifest(dir.path(), "kraken", day()).unwrap().unwrap();
    assert_eq!(m.files.len(), 2);
    let fa = m.file("0000-a.jsonl.gz").unwrap();
    assert_eq!(fa.lines, 3);
    assert_eq!((fa.first_rx, fa.last_rx), (Some(T0 + 3), Some(T0 + 9)));
    assert_eq!(
        (fa.first_seq, fa.last_seq),
        (
            Some(Seq {
                stream: 12,
                index: Some(0)
            }),
            Some(Seq {
                stream: 12,
                index: Some(1)
            })
        )
    );
    assert_eq!(
        fa.gaps,
        [Gap {
            rx: T0 + 5,
            subj: "prod.kraken.json.status.conn-1".into()
        }]
    );
    let fb = m.file("0000-b.jsonl.gz").unwrap();
    assert_eq!(
        (fb.first_seq.unwrap().stream, fb.last_seq.unwrap().stream),
        (7, 9)
    );
    let raw = fs::read_to_string(dir.path().join("kraken/2024-03-01/manifest.json")).unwrap();
    assert!(raw.contains("\"first_seq\": [\n"), "{raw}");
}

#[test]
fn manifest_merge_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut c = cfg(&root, &format!("w{t}"));
                c.rotation_secs = 60;
                let mut w = ArchiveWriter::open(c).unwrap();
                for minute in 0..30 {
                    w.write(trade(T0 + minute * 60 * SEC, minute).as_bytes())
                        .unwrap();
                }
                w.close().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let m = read_manifest(&root, "kraken", day()).unwrap().unwrap();
    assert_eq!(m.files.len(), 120);
    assert!(m.files.iter().all(|f| f.lines == 1));
}

#[test]
fn zstd_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path(), "h1");
    c.codec = Codec::Zstd;
    let mut w = ArchiveWriter::open(c).unwrap();
    let mut all = String::new();
    for batch in 0..4u64 {
        let mut data = String::new();
        for i in 0..50 {
            data += &trade(T0 + batch * 1000 + i, i);
        }
        w.write(data.as_bytes()).unwrap();
        w.flush().unwrap();
        all += &data;
    }
    w.close().unwrap();
    let files = list_files(dir.path(), None, None, None, false).unwrap();
    assert!(files[0].to_string_lossy().ends_with("0000-h1.jsonl.zst"));
    assert_eq!(read_all(&files, ReadFilter::default()).concat(), all);
    let bytes = fs::read(&files[0]).unwrap();
    assert_eq!(member_ends(&bytes, Codec::Zstd).len(), 4);
    assert_eq!(zstd::decode_all(&bytes[..]).unwrap(), all.as_bytes());
    let m = read_manifest(dir.path(), "kraken", day()).unwrap().unwrap();
    assert_eq!((m.files[0].codec.as_str(), m.files[0].members), ("zstd", 4));
}

#[test]
fn merge_order_across_writers_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = ArchiveWriter::open(cfg(dir.path(), "a")).unwrap();
    let mut b = ArchiveWriter::open(cfg(dir.path(), "b")).unwrap();
    let subjects = [
        "prod.kraken.json.trade.BTC_USD",
        "prod.kraken.json.book.BTC_USD",
        "prod.kraken.json.book.ETH_USD",
        "prod.kalshi.politics.json.trade.KXPRES-28-DJT",
    ];
    let mut expect = Vec::new();
    // Two writers, overlapping files, three windows each.
    for i in 0..3000u64 {
        let rx = T0 + i * SEC;
        let l = line(rx, subjects[(i % 4) as usize], &format!("{{\"i\":{i}}}"));
        if i % 3 == 0 { &mut b } else { &mut a }
            .write(l.as_bytes())
            .unwrap();
        expect.push(l);
        if i % 100 == 0 {
            a.flush().unwrap();
        }
    }
    a.close().unwrap();
    b.close().unwrap();
    let files = list_files(dir.path(), Some("kraken"), Some(day()), Some(day()), false).unwrap();
    assert_eq!(files.len(), 8, "{files:?}");
    let got = read_all(&files, ReadFilter::default());
    assert_eq!(got, expect);

    let sel = |f: ReadFilter| read_all(&files, f);
    let trades: Vec<_> = expect
        .iter()
        .filter(|l| l.contains(".trade."))
        .cloned()
        .collect();
    assert_eq!(sel(ReadFilter::default().kinds(["trade"])), trades);
    let btc: Vec<_> = expect
        .iter()
        .filter(|l| l.contains(".BTC_USD\""))
        .cloned()
        .collect();
    assert_eq!(sel(ReadFilter::default().instruments(["BTC/USD"])), btc);
    assert_eq!(sel(ReadFilter::default().instruments(["BTC_USD"])), btc);
    let both: Vec<_> = btc
        .iter()
        .filter(|l| l.contains(".book."))
        .cloned()
        .collect();
    assert_eq!(
        sel(ReadFilter::default()
            .kinds(["book", "ticker"])
            .instruments(["BTC/USD"])),
        both
    );
    let djt: Vec<_> = expect
        .iter()
        .filter(|l| l.contains("KXPRES"))
        .cloned()
        .collect();
    assert_eq!(
        sel(ReadFilter::default().instruments(["KXPRES-28-DJT"])),
        djt
    );
    let (from, to) = (T0 + 1000 * SEC, T0 + 2000 * SEC);
    let ranged: Vec<_> = expect
        .iter()
        .filter(|l| (from..to).contains(&rx_of(l)))
        .cloned()
        .collect();
    assert_eq!(ranged.len(), 1000);
    assert_eq!(
        sel(ReadFilter::default().rx_range(Some(from), Some(to))),
        ranged
    );
    assert!(sel(ReadFilter::default().rx_range(Some(T0 + 10_000 * SEC), None)).is_empty());

    let counts = count_lines(&files).unwrap();
    assert_eq!(counts.lines, 3000);
    assert_eq!(counts.by_subject[subjects[0]], 750);
    assert_eq!(counts.by_kind["book"], 1500);
    assert_eq!(counts.by_kind["trade"], 1500);

    let mut r = MergeReader::open(&files, ReadFilter::default()).unwrap();
    let mut l = Vec::new();
    assert!(r.next_line(&mut l).unwrap());
    assert_eq!(l, expect[0].as_bytes());
}

#[test]
fn merge_keeps_file_order_of_unsorted_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = ArchiveWriter::open(cfg(dir.path(), "a")).unwrap();
    let mut b = ArchiveWriter::open(cfg(dir.path(), "b")).unwrap();
    let la = [trade(T0 + 10, 0), trade(T0 + 5, 1), trade(T0 + 20, 2)];
    let lb = [trade(T0 + 7, 3), trade(T0 + 15, 4)];
    a.write(la.concat().as_bytes()).unwrap();
    b.write(lb.concat().as_bytes()).unwrap();
    a.close().unwrap();
    b.close().unwrap();
    let files = list_files(dir.path(), None, None, None, false).unwrap();
    let got = read_all(&files, ReadFilter::default());
    let want = [&lb[0], &la[0], &la[1], &lb[1], &la[2]];
    assert_eq!(got.iter().collect::<Vec<_>>(), want);
}

#[test]
fn list_files_ranges_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ArchiveWriter::open(cfg(dir.path(), "h1")).unwrap();
    for d in 0..3 {
        w.write(trade(T0 + d * 86_400 * SEC, d).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    let d2 = Date::parse("2024-03-02").unwrap();
    assert_eq!(
        list_files(dir.path(), None, Some(d2), None, false)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        list_files(dir.path(), None, Some(d2), None, true)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        list_files(dir.path(), None, None, Some(d2), false)
            .unwrap()
            .len(),
        2
    );
    assert!(list_files(dir.path(), Some("nope"), None, None, false)
        .unwrap()
        .is_empty());
    let e = list_files(&dir.path().join("missing"), None, None, None, false).unwrap_err();
    assert!(e.is_config());
    // A reader over a .part stops quietly at a torn tail.
    let part = w.current_path().unwrap().to_path_buf();
    let first = fs::metadata(&part).unwrap().len();
    let mut more = String::new();
    for i in 0..200 {
        more += &trade(T0 + 2 * 86_400 * SEC + i, i);
    }
    w.write(more.as_bytes()).unwrap();
    w.flush().unwrap();
    let len = fs::metadata(&part).unwrap().len();
    let bytes = fs::read(&part).unwrap();
    fs::write(&part, &bytes[..usize::try_from((first + len) / 2).unwrap()]).unwrap();
    let got = read_all(&[part], ReadFilter::default());
    assert!(!got.is_empty() && got.len() < 201);
    assert!((trade(T0 + 2 * 86_400 * SEC, 2) + &more).starts_with(&got.concat()));
    drop(w);
}

#[test]
fn reader_opens_files_lazily() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path(), "h1");
    c.rotation_secs = 60;
    let mut w = ArchiveWriter::open(c).unwrap();
    let mut all = String::new();
    for i in 0..50 * 6 {
        let l = trade(T0 + i * 10 * SEC, i);
        w.write(l.as_bytes()).unwrap();
        all += &l;
    }
    w.close().unwrap();
    let files = list_files(dir.path(), None, None, None, false).unwrap();
    assert_eq!(files.len(), 50);
    let mut r = MergeReader::open(&files, ReadFilter::default()).unwrap();
    let mut out = Vec::new();
    let mut most = 0;
    while r.read_chunk(&mut out, 1, usize::MAX).unwrap() == 1 {
        most = most.max(r.open_files());
    }
    assert!(most <= 2, "{most} files open at once");
    assert_eq!(String::from_utf8(out).unwrap(), all);
    // Files outside the rx range are not even opened.
    let f = ReadFilter::default().rx_range(Some(T0 + 600 * SEC), Some(T0 + 720 * SEC));
    let got = read_all(&files, f);
    assert_eq!(got.len(), 12);
}
