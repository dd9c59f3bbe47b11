# jobchat's image: a static binary (no cgo: SQLite is modernc's pure Go),
# run as a non-root user on an empty base. Build:
#   docker build --build-arg VERSION=$(git describe --tags --always) -t jobchat .
# deploy/compose.yaml runs two of these behind a load balancer.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so that a change to the code reuses the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/jobchat ./cmd/jobchat \
 && mkdir -p /out/data

FROM scratch
# TLS roots for rediss:// and PostgreSQL over TLS; zoneinfo is embedded by
# nothing jobchat needs (it logs and stores UTC).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/jobchat /jobchat
# The data dir holds SQLite and uploaded files when no PostgreSQL or S3 is
# configured; it must be writable by the non-root user.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV JOBCHAT_ADDR=:8080 \
    JOBCHAT_DATA_DIR=/data \
    JOBCHAT_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/jobchat"]
CMD ["serve"]
