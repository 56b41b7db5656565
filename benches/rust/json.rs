//! The core's JSON scanner (`ssmd_core::json`) against serde_json and
//! sonic-rs, on the golden fixture frames of every venue
//! (`tests/fixtures/<venue>/ws_*.jsonl`, acks, bad frames and all):
//!
//! - `validate`: accept or reject the whole frame (no values kept);
//! - `fields`: validate, then read the routing fields of the frame (its
//!   root keys `type`/`channel`/`feed`/`event_type`/`msg`/`data`, as the
//!   processor does): ssmd through its tape, the others through a DOM.
//!
//! `cargo bench --bench json`
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde::de::IgnoredAny;
use ssmd_core::json::{self, Tape};

const KEYS: [&str; 6] = ["type", "channel", "feed", "event_type", "msg", "data"];

fn frames() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for venue in ["kalshi", "kraken", "kraken_futures", "polymarket"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(venue))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n.starts_with("ws_") && n.ends_with(".jsonl") && !n.ends_with(".expected.jsonl")
            })
            .collect();
        files.sort();
        for f in files {
            let data = std::fs::read(f).unwrap_or_default();
            out.extend(
                data.split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec),
            );
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("json/validate");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("ssmd", |b| {
        b.iter(|| frames.iter().filter(|f| json::parse(f).is_ok()).count());
    });
    g.bench_function("serde_json", |b| {
        b.iter(|| {
            frames
                .iter()
                .filter(|f| serde_json::from_slice::<IgnoredAny>(f).is_ok())
                .count()
        });
    });
    g.bench_function("sonic_rs", |b| {
        b.iter(|| {
            frames
                .iter()
                .filter(|f| sonic_rs::from_slice::<IgnoredAny>(f).is_ok())
                .count()
        });
    });
    g.finish();

    let mut g = c.benchmark_group("json/fields");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("ssmd", |b| {
        let mut tape = Tape::with_depth(2);
        b.iter(|| {
            let mut n = 0usize;
            for f in &frames {
                if let Ok(doc) = json::parse_doc(f, &mut tape) {
                    n += doc.get_many(KEYS).iter().flatten().count();
                }
            }
            n
        });
    });
    g.bench_function("serde_json", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for f in &frames {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(f) {
                    n += KEYS.iter().filter(|k| v.get(k).is_some()).count();
                }
            }
            n
        });
    });
    g.bench_function("sonic_rs", |b| {
        use sonic_rs::JsonValueTrait;
        b.iter(|| {
            let mut n = 0usize;
            for f in &frames {
                if let Ok(v) = sonic_rs::from_slice::<sonic_rs::Value>(f) {
                    n += KEYS.iter().filter(|k| v.get(k).is_some()).count();
                }
            }
            n
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
