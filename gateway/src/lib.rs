//! The Polygraph gateway: one GraphQL API over a federated supergraph.
//!
//! It grows in the stages of `shared/DESIGN.md`; what is here so far is loading a supergraph
//! ([`supergraph`]): its subgraphs, where each type and field lives, and the API schema; and
//! preparing operations against that API schema ([`prepare`]).

pub mod prepare;
pub mod supergraph;
