//! Archive writer throughput on realistic market-data JSONL.
//!
//! Input: envelope lines (DESIGN §4) built from the shared venue fixtures
//! (`../shared/fixtures/*.jsonl`, or `SSMD_FIXTURES`) with every short
//! numeric field (prices, sizes, timestamps, sequence numbers) varied by a
//! seeded generator, so the data is not trivially repetitive. Reports
//! `Throughput::Bytes` of JSONL input per gzip level and codec, and prints
//! each setting's compression ratio on stderr.
//!
//! Run: `cargo bench --bench archive` (`-- gzip/3` for one setting).
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ssmd_core::archive::{ArchiveWriter, Codec, WriterConfig};
use std::path::PathBuf;
use std::time::Duration;

const INPUT_BYTES: usize = 32 << 20;
const T0: u64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn fixtures_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SSMD_FIXTURES") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
}

/// `(venue, frame)` pairs from the fixtures, or a built-in sample.
fn frames() -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(fixtures_dir()) {
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "jsonl") {
                let venue = p.file_stem().unwrap().to_string_lossy().replace('_', "-");
                for l in std::fs::read_to_string(&p).unwrap_or_default().lines() {
                    if !l.trim().is_empty() {
                        out.push((venue.clone(), l.to_owned()));
                    }
                }
            }
        }
    }
    if out.is_empty() {
        out.push((
            "kraken".into(),
            r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":97234.5,"qty":0.00123,"ord_type":"market","trade_id":123456789,"timestamp":"2026-01-01T00:00:00.123456Z"}]}"#.into(),
        ));
    }
    out
}

/// Replace the last digits of every short numeric field with random ones.
fn vary(frame: &str, rng: &mut Rng) -> String {
    let b = frame.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let starts_number =
            b[i].is_ascii_digit() && i > 0 && matches!(b[i - 1], b':' | b'"' | b'.' | b',' | b'[');
        if !starts_number {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let numeric_end = j == b.len() || matches!(b[j], b'"' | b',' | b'}' | b']' | b'.');
        if j - i <= 12 && numeric_end {
            let keep = (j - i).saturating_sub(3).max(usize::from(j - i > 1));
            out.extend_from_slice(&b[i..i + keep]);
            for _ in i + keep..j {
                out.push(b'0' + u8::try_from(rng.below(10)).unwrap());
            }
        } else {
            out.extend_from_slice(&b[i..j]);
        }
        i = j;
    }
    String::from_utf8(out).unwrap()
}

fn kind_of(frame: &str) -> &'static str {
    for (needle, kind) in [
        ("trade", "trade"),
        ("book", "book"),
        ("orderbook", "book"),
        ("ticker", "ticker"),
        ("price_change", "price_change"),
        ("lifecycle", "lifecycle"),
    ] {
        if frame.contains(needle) {
            return kind;
        }
    }
    "status"
}

/// About `bytes` of envelope lines, deterministic.
fn market_data(bytes: usize) -> Vec<u8> {
    let frames = frames();
    let mut rng = Rng(42);
    let mut out = Vec::with_capacity(bytes + 4096);
    let mut rx = T0;
    while out.len() < bytes {
        let (venue, frame) = &frames[usize::try_from(rng.below(frames.len() as u64)).unwrap()];
        rx += rng.below(2_000_000);
        let inst = rng.below(40);
        let line = format!(
            "{{\"rx\":{rx},\"conn\":\"{venue}-{}\",\"subj\":\"prod.{venue}.json.{}.INST-{inst:02}\",\"msg\":{}}}\n",
            rng.below(4),
            kind_of(frame),
            vary(frame, &mut rng)
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// Write `data` through a writer in 64 KiB calls, close, return the
/// compressed size.
fn write_all(root: &std::path::Path, data: &[u8], codec: Codec, level: i32, fsync: bool) -> u64 {
    let _ = std::fs::remove_dir_all(root.join("bench"));
    let mut cfg = WriterConfig::new(root, "bench", "w");
    cfg.codec = codec;
    cfg.level = Some(level);
    cfg.fsync = fsync;
    cfg.rotation_secs = 86_400;
    let mut w = ArchiveWriter::open(cfg).unwrap();
    let mut start = 0;
    while start < data.len() {
        let mut end = (start + (64 << 10)).min(data.len());
        while data[end - 1] != b'\n' {
            end += 1;
        }
        w.write(&data[start..end]).unwrap();
        start = end;
    }
    w.close().unwrap();
    w.stats().bytes_out
}

fn bench_writer(c: &mut Criterion) {
    let data = market_data(INPUT_BYTES);
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("archive_writer");
    group
        .throughput(Throughput::Bytes(data.len() as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let settings: Vec<(Codec, i32, bool)> = (1..=6)
        .map(|l| (Codec::Gzip, l, false))
        .chain([
            (Codec::Gzip, 3, true),
            (Codec::Zstd, 1, false),
            (Codec::Zstd, 3, false),
        ])
        .collect();
    for (codec, level, fsync) in settings {
        let out = write_all(dir.path(), &data, codec, level, fsync);
        #[allow(clippy::cast_precision_loss)]
        let ratio = data.len() as f64 / out as f64;
        let id = format!("{codec}/{level}{}", if fsync { "/fsync" } else { "" });
        eprintln!("{id}: {} MB in, ratio {ratio:.2}", data.len() >> 20);
        group.bench_function(BenchmarkId::from_parameter(&id), |b| {
            b.iter(|| write_all(dir.path(), &data, codec, level, fsync));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_writer);
criterion_main!(benches);
