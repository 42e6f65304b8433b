//! Benchmarks live in `benches/` and `load/`; run them as bench/README.md says.
//!
//! The library holds what benchmarks and end-to-end tests share: [`federation`], four
//! subgraphs shaped like the public gateways benchmark.

pub mod federation;
