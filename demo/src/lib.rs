//! The demo ML shop: one deterministic generator ([`spec`]) and one bulk loader per database
//! ([`load`]), sharing ids across PostgreSQL, MongoDB, Elasticsearch, Redis, ClickHouse and
//! Neo4j. `polygraph demo load` runs it; the end-to-end tests read back what it wrote.

pub mod endpoints;
pub mod load;
pub mod spec;

pub use endpoints::Endpoints;
pub use load::{LoadOptions, Report, load_all};
pub use spec::{Counts, DemoSpec};
