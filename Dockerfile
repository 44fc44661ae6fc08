# The operator image: a release build in a Rust image, then the binary alone on distroless
# (glibc, CA certificates for Prometheus over HTTPS, no shell), running as a non-root user.
#   docker build -t slo-warden .
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
RUN cargo build --release --locked --bin slo-warden

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/slo-warden /usr/local/bin/slo-warden
USER 65532:65532
EXPOSE 8080 8443
ENTRYPOINT ["/usr/local/bin/slo-warden"]
CMD ["run"]
