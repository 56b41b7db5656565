//! The merge reader: order, filters, file listing, lazy opening.
use super::*;

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
fn runs_of_one_stream_merge_as_line_by_line() {
    // Blocks of lines from one writer, then the other, with equal rx across
    // them and files of later windows opening in the middle of a block: a
    // chunk read takes a stream's lines while it stays the head of the merge,
    // and must give what one line per call (a heap pop per line) gives.
    let dir = tempfile::tempdir().unwrap();
    let mut a = ArchiveWriter::open(cfg(dir.path(), "a")).unwrap();
    let mut b = ArchiveWriter::open(cfg(dir.path(), "b")).unwrap();
    let mut n = 0;
    for block in 0..60u64 {
        let w = if block % 3 == 0 { &mut b } else { &mut a };
        let size = block * 7 % 39 + 1;
        for j in 0..=size {
            // a tie: each block's last line has the rx of the next block's first
            let rx = T0 + (block * 40 + if j == size { 40 } else { j }) * SEC;
            w.write(trade(rx, n).as_bytes()).unwrap();
            n += 1;
        }
    }
    a.close().unwrap();
    b.close().unwrap();
    let files = list_files(dir.path(), None, None, None, false).unwrap();
    assert!(files.len() >= 4, "{files:?}");
    let read = |lines_per_call: usize| {
        let mut r = MergeReader::open(&files, ReadFilter::default()).unwrap();
        let mut out = Vec::new();
        while r.read_chunk(&mut out, lines_per_call, usize::MAX).unwrap() > 0 {}
        out
    };
    let one = read(1);
    assert_eq!(one.iter().filter(|&&c| c == b'\n').count() as u64, n);
    for per in [2, 7, 100, 100_000] {
        assert_eq!(read(per), one, "{per} lines per call");
    }
    let rxs: Vec<u64> = String::from_utf8(one)
        .unwrap()
        .lines()
        .map(|l| rx_of(&format!("{l}\n")))
        .collect();
    assert!(rxs.windows(2).all(|w| w[0] <= w[1]));
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
