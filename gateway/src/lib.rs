//! The Polygraph gateway: one GraphQL API over a federated supergraph.
//!
//! A request goes through [`http`] (GraphQL over HTTP, its token checked by [`auth`]) to
//! [`gateway`], which prepares the
//! operation against the API schema of the [`supergraph`] ([`prepare`]), lowers it
//! ([`operation`]), authorizes it ([`authorize`], with Rego [`policy`]), plans it ([`plan`],
//! cached), runs the plan against the subgraphs
//! ([`execute`]), reading the subgraphs' replies once into flat tapes ([`json`]), putting their
//! answers together by reference ([`data`]), and builds the client's response from them
//! ([`response`]).

pub mod auth;
pub mod authorize;
pub mod changed;
pub mod coalesce;
pub mod cost;
pub mod data;
pub mod edge;
pub mod entity_cache;
pub mod errors;
pub mod execute;
pub mod fanout;
pub mod gateway;
pub mod http;
pub mod json;
mod links;
pub mod live;
pub mod operation;
pub mod persisted;
pub mod plan;
pub mod policy;
pub mod prepare;
pub mod requirements;
pub mod response;
pub mod response_cache;
pub mod settings;
pub mod store;
pub mod streams;
pub mod subscriptions;
pub mod supergraph;
