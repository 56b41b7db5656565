//! Criterion benches of the core: validate, route + envelope, normalize.
//! Input: the golden fixtures of every venue (`tests/fixtures/<venue>/ws_*.jsonl`),
//! or `SSMD_BENCH_DATA=<dir>` with `<venue>.jsonl` files (e.g. from `ssmd.samples`).
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ssmd_core::model::Venue;
use ssmd_core::normalize::Normalizer;
use ssmd_core::processor::{Processor, Rx};

fn load(venue: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Ok(dir) = std::env::var("SSMD_BENCH_DATA") {
        let data =
            std::fs::read(Path::new(&dir).join(format!("{venue}.jsonl"))).unwrap_or_default();
        out.extend(
            data.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    if out.is_empty() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(venue);
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files {
            let name = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if name.starts_with("ws_")
                && name.ends_with(".jsonl")
                && !name.ends_with(".expected.jsonl")
            {
                let data = std::fs::read(&f).unwrap_or_default();
                out.extend(
                    data.split(|&b| b == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(<[u8]>::to_vec),
                );
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    for (venue, dir) in [
        (Venue::Kalshi, "kalshi"),
        (Venue::Kraken, "kraken"),
        (Venue::KrakenFutures, "kraken_futures"),
        (Venue::Polymarket, "polymarket"),
    ] {
        let frames = load(dir);
        let slices: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let bytes: usize = frames.iter().map(Vec::len).sum();
        let mut g = c.benchmark_group(format!("core/{dir}"));
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function("validate", |b| {
            b.iter(|| {
                slices
                    .iter()
                    .filter(|f| ssmd_core::json::parse(f).is_ok())
                    .count()
            });
        });
        g.bench_function("process", |b| {
            let mut p = Processor::new(venue, "bench", "prod");
            b.iter(|| {
                p.reset();
                p.process(&slices, Rx::All(1)).entries.len()
            });
        });
        g.bench_function("normalize", |b| {
            let mut n = Normalizer::new(venue);
            let mut out = Vec::with_capacity(bytes * 2);
            b.iter(|| {
                out.clear();
                n.write_all(slices.iter().copied(), &mut out)
            });
        });
        g.finish();
    }
}

/// One Polymarket array frame of N elements against N one-element frames:
/// routing is linear in the frame, so the two cost about the same per element
/// (issue 13: the array frame used to be quadratic).
fn linear(c: &mut Criterion) {
    const N: usize = 100_000;
    let el = br#"{"event_type":"last_trade_price","asset_id":"7","market":"0xab","price":"0.55","side":"SELL","size":"100","fee_rate_bps":"0","timestamp":"1757908892351"}"#;
    let mut array = Vec::with_capacity(N * (el.len() + 1) + 2);
    array.push(b'[');
    for i in 0..N {
        if i > 0 {
            array.push(b',');
        }
        array.extend_from_slice(el);
    }
    array.push(b']');
    let singles: Vec<&[u8]> = vec![&el[..]; N];
    let mut g = c.benchmark_group("core/linear");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("polymarket_one_frame_of_100k", |b| {
        let mut p = Processor::new(Venue::Polymarket, "bench", "prod");
        b.iter(|| p.process(&[&array], Rx::All(1)).entries.len());
    });
    g.bench_function("polymarket_100k_frames", |b| {
        let mut p = Processor::new(Venue::Polymarket, "bench", "prod");
        b.iter(|| p.process(&singles, Rx::All(1)).entries.len());
    });
    g.finish();
}

criterion_group!(benches, bench, linear);
criterion_main!(benches);
