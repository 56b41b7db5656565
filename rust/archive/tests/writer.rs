//! The writer: members, flushes, rotation, names, bad input.
use super::*;

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
    assert_eq!(e.sha256, scan::hex(&Sha256::digest(&bytes)));
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
