//! gzip/zstd JSONL archive: writer (members, fsync, rotation, manifest, repair) and reader.
