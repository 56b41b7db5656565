//! `ssmd-core`: the hot path of ssmd.
//!
//! Venue frame parsing and routing, normalization to the neutral model,
//! integrity checks (sequence numbers, Kraken book checksums) and the gzip
//! JSONL archive. Everything here takes bytes and returns Rust types; the
//! pyo3 bindings live in `python/` behind the `python` feature so that
//! `cargo test` needs no Python.

pub mod archive;
pub mod columns;
pub mod decimal;
pub mod envelope;
pub mod error;
pub mod integrity;
pub mod json;
pub mod model;
pub mod normalize;
pub mod processor;
pub mod records;
pub mod signals;
pub mod subject;
pub mod venues;

#[cfg(feature = "python")]
mod python;

/// Version of the core, reported by `ssmd version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
