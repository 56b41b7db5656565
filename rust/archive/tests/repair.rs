//! Repair of crashed `.part` files and the manifest merge.
use super::*;

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
        assert_eq!(e.sha256, scan::hex(&Sha256::digest(&fb)));
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
