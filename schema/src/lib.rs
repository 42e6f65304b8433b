//! Schema tooling for the registry and the `polygraph schema` CLI.
//!
//! [`compose`] makes a supergraph of subgraph SDLs (or says why it cannot); [`diff`] says what
//! a candidate API schema changes for the clients of the current one; [`usage`] says which of
//! those changes the operations clients really send would notice.

pub mod compose;
pub mod diff;
pub mod usage;
