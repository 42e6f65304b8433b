# Loopback ports of the project's own, so a machine's own PostgreSQL (5432) or Redis (6379)
# never collide with ours. Sourced by scripts/dev; the Rust side reads the same defaults in
# demo/src/endpoints.rs, and every one can be overridden from the environment.
POSTGRES_PORT=${POLYGRAPH_POSTGRES_PORT:-55432}
REDIS_PORT=${POLYGRAPH_REDIS_PORT:-56379}
MONGODB_PORT=${POLYGRAPH_MONGODB_PORT:-57017}
ELASTICSEARCH_PORT=${POLYGRAPH_ELASTICSEARCH_PORT:-59200}
CLICKHOUSE_HTTP_PORT=${POLYGRAPH_CLICKHOUSE_HTTP_PORT:-58123}
CLICKHOUSE_TCP_PORT=${POLYGRAPH_CLICKHOUSE_TCP_PORT:-59000}
NEO4J_PORT=${POLYGRAPH_NEO4J_PORT:-57687}
OIDC_PORT=${POLYGRAPH_OIDC_PORT:-54080}
