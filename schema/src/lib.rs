//! Schema tooling for the registry and the `polygraph schema` CLI.
//!
//! [`diff`] says what a candidate API schema changes for the clients of the current one.

pub mod compose;
pub mod diff;
