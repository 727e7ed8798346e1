# syntax=docker/dockerfile:1.7
#
# etl container image: a release build of the one binary on Debian 12, run as a non-root user.
#
#   docker build -t etl:0.1.0 .
#   docker run --rm etl:0.1.0 --help
#
# The final image keeps /bin/sh (debian:bookworm-slim rather than distroless): the AWS Fargate task
# definitions write the key PEM from an environment variable to /tmp before exec'ing etl
# (terraform/aws/ecs.tf). A release build takes ~30 min on 2 cores (datafusion, thin LTO); the
# cache mounts keep the registry and target dir between builds.

# A batch job that runs to completion: the scheduler watches its exit code, not a health probe.
#checkov:skip=CKV_DOCKER_2:Batch job, not a service: no HEALTHCHECK.

FROM rust:1-bookworm AS build
# rdkafka builds its bundled librdkafka with ./configure + make: gcc, make, perl and zlib headers
# (already in the rust image; named here so a different base fails loudly).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc make perl pkg-config zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .dockerignore admits only Cargo.toml, Cargo.lock, src/ and benches/ (when present).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin etl \
 && install -D -m 0755 target/release/etl /out/etl

FROM debian:bookworm-slim
# CA certificates for HTTPS to the object stores (object_store uses the system roots); zlib and
# glibc are already part of the base image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 etl \
 && useradd --system --uid 10001 --gid etl --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin etl
COPY --from=build /out/etl /usr/local/bin/etl
# Named queries for `etl query --name ...` (found through ETL_SQL_DIR).
COPY --from=build /src/sql /etc/etl/sql
ENV ETL_SQL_DIR=/etc/etl/sql
USER 10001:10001
WORKDIR /tmp
ENV ETL_LOG=info
ENTRYPOINT ["etl"]
CMD ["--help"]
