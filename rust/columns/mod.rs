//! The columnar form of the normalized records (docs/core.md, docs/data.md): one Arrow
//! schema per kind ([`tables`]), builders that append typed records
//! ([`build`]), a reader that turns archive files into record batches in
//! `rx` order ([`export`]), a small exporter of the Arrow C data
//! interface ([`ffi`]) that hands the batches to Python without a copy, and
//! the pool their buffers come back to for the next batch ([`pool`]).
pub mod build;
pub mod export;
pub mod ffi;
pub mod pool;
pub mod tables;

pub use export::{ColumnReader, Figures, KindFigures, Select};
pub use ffi::{export_array, export_schema, Data, FfiArray, FfiSchema, Field};
pub use tables::{f64_of, Kind, Table, SCHEMA_VERSION};
