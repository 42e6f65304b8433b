//! What every Polygraph database subgraph shares.
//!
//! A subgraph is translate-then-execute (see `shared/STYLE.md`): the schema is generated from
//! the database at start-up; a root resolver turns the selected fields ([`selection`]) and the
//! standard list arguments ([`filter`]) into one database query, runs it with bound parameters,
//! and the nested fields read their values from the result. Each database crate supplies the
//! translation and the execution; this crate supplies the rest.

pub mod aggregate;
pub mod cache;
pub mod claims;
pub mod config;
pub mod documents;
pub mod engine;
pub mod entities;
pub mod filter;
pub mod guard;
pub mod naming;
pub mod rules;
pub mod selection;
pub mod server;
pub mod subgraph;
pub mod values;
pub mod variables;
