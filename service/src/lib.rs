//! What every Polygraph service reports: Prometheus metrics at `/metrics` ([`metrics`]),
//! OpenTelemetry traces over OTLP and log lines ([`traces`]), and the middleware that observes
//! each GraphQL request ([`http`]), reading configuration files ([`config`]), and GraphQL over WebSocket ([`ws`]).

pub mod config;
pub mod http;
pub mod metrics;
pub mod serve;
pub mod traces;
pub mod ws;

pub use metrics::{Outcome, metrics};
