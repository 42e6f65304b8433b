# The `polygraph` binary, for docker-compose.yml and k8s/. Build: docker build -t polygraph .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin polygraph

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 polygraph
COPY --from=build /src/target/release/polygraph /usr/local/bin/polygraph
USER polygraph
ENTRYPOINT ["polygraph"]
