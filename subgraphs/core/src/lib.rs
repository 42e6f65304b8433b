//! What every Polygraph database subgraph shares.
//!
//! A subgraph is translate-then-execute (see `shared/STYLE.md`): the schema is generated from
//! the database at start-up; async-graphql validates each request against it once per query
//! text, and the subgraph's [`engine`] answers every root field, turning the selected fields
//! ([`selection`]) and the standard list arguments ([`filter`]) into database queries run with
//! bound parameters, and writing the response. Each database crate supplies its engine; this
//! crate supplies the rest.

pub mod aggregate;
pub mod cache;
pub mod changes;
pub mod claims;
pub mod config;
pub mod cost;
pub mod documents;
pub mod engine;
pub mod entities;
pub mod filter;
pub mod guard;
pub mod naming;
pub mod recorder;
pub mod rules;
pub mod selection;
pub mod server;
pub mod subgraph;
pub mod variables;
