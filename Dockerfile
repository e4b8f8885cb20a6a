# The encore image the stack's task definitions run (serve, consume, train).
#
#   docker build -t encore .
#   docker run --rm -p 8080:8080 encore serve --no-verify --addr 0.0.0.0:8080
#
# Build stage: the locked dependencies, a release build of the one binary. No container
# daemon runs on the development machines, so infra/docker/check-build.sh replays these
# build steps (the same files, the same cargo invocation) in a clean directory instead.
FROM rust:1-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake perl clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The manifest names these targets; cargo reads them, the release build does not compile them.
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin encore

# Runtime stage: the binary, the demo catalog and the interaction model, a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/encore --create-home encore
COPY --from=build /src/target/release/encore /usr/local/bin/encore
COPY models /app/models
COPY intents /app/intents
WORKDIR /app
USER encore
# Profiles (embedded store), the feedback spool and the copy of models from S3 live here.
ENV ENCORE_DATA_DIR=/var/lib/encore \
    ENCORE_ADDR=0.0.0.0:8080 \
    ENCORE_LOG_FORMAT=json
EXPOSE 8080 9090
# Liveness for `docker run` (ECS uses the task definition's own checks): /healthz on the
# admin address when ENCORE_ADMIN_ADDR is set (the stack: 0.0.0.0:9090), else on 8080. The
# consumer and training tasks serve no HTTP; run them with --no-healthcheck under Docker.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${ENCORE_ADMIN_ADDR##*:}/healthz" 2>/dev/null || curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["encore"]
CMD ["serve"]
