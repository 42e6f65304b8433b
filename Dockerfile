# The `polygraph` binary, for docker-compose.yml and k8s/. Build: docker build -t polygraph .
FROM rust:1.95-bookworm AS build
WORKDIR /src

# Dependencies first, in a layer of their own: it is rebuilt only when a manifest or the lock
# file changes, not on every source edit. Each workspace crate is a stub while they build.
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY cli/Cargo.toml cli/
COPY service/Cargo.toml service/
COPY gateway/Cargo.toml gateway/
COPY schema/Cargo.toml schema/
COPY registry/Cargo.toml registry/
COPY demo/Cargo.toml demo/
COPY tests/Cargo.toml tests/
COPY testkit/Cargo.toml testkit/
COPY bench/Cargo.toml bench/
COPY subgraphs/core/Cargo.toml subgraphs/core/
COPY subgraphs/postgres/Cargo.toml subgraphs/postgres/
COPY subgraphs/mongodb/Cargo.toml subgraphs/mongodb/
COPY subgraphs/elasticsearch/Cargo.toml subgraphs/elasticsearch/
COPY subgraphs/redis/Cargo.toml subgraphs/redis/
COPY subgraphs/clickhouse/Cargo.toml subgraphs/clickhouse/
COPY subgraphs/neo4j/Cargo.toml subgraphs/neo4j/
RUN for crate in cli service gateway schema registry demo tests testkit bench subgraphs/*/; do \
      mkdir -p "$crate/src" && : > "$crate/src/lib.rs"; \
    done \
    && mkdir -p bench/src/bin bench/benches \
    && for stub in cli/src/main.rs bench/src/bin/federation_subgraphs.rs \
         bench/benches/postgres_subgraph.rs bench/benches/gateway.rs \
         bench/benches/document_subgraphs.rs bench/benches/ml_subgraphs.rs; do \
      echo 'fn main() {}' > "$stub"; \
    done \
    && cargo build --release --locked --bin polygraph

# Then the sources; touched so that cargo rebuilds every stubbed crate from them.
COPY . .
RUN find cli service gateway schema registry demo tests testkit bench subgraphs -name '*.rs' \
      -exec touch {} + \
    && cargo build --release --locked --bin polygraph

# Only the binary and the CA roots it verifies databases' certificates with, as a user that
# is not root (the Kubernetes manifests run it as uid 10001 too).
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 polygraph
COPY --from=build /src/target/release/polygraph /usr/local/bin/polygraph
USER 10001
# Health checks: `polygraph probe http://127.0.0.1:PORT/ready` (docker-compose.yml uses it).
ENTRYPOINT ["polygraph"]
