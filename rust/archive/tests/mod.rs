//! End-to-end tests of the archive, one file per job: the writer
//! ([`writer`]), repair and the manifest ([`repair`]), the merge reader
//! ([`reader`]) and reading damaged files ([`recover`]). The helpers here
//! build lines and writers for all of them.
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

mod reader;
mod recover;
mod repair;
mod writer;
