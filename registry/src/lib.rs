//! The schema registry behind `polygraph registry serve` and `polygraph schema publish |
//! check | fetch | list | diff | rollback`: subgraphs published with a token, composed in
//! Rust, checked for breaking changes, and kept as versions in PostgreSQL or a local file;
//! gateways fetch the current supergraph with its entity tag.

pub mod service;
pub mod store;

pub use service::{Registry, Tokens, router};
pub use store::Store;
