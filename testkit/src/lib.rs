//! Fixtures the end-to-end tests and the benchmarks share, so neither depends on the other:
//! [`federation`], four subgraphs shaped like the public gateways benchmark's and their graph
//! as one monolith; [`operations`], random valid operations over any schema; and
//! [`security`], supergraphs given security directives.

pub mod federation;
pub mod operations;
pub mod security;
