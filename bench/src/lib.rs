//! Benchmarks live in `benches/`; run them with `cargo bench -p polygraph-bench` (see README.md).
