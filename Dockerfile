# berth's container image: a static binary on a distroless base, running as a non-root user.
#   docker build -t berth:dev --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse HEAD) .
# (No Docker engine runs on the project's own machines: `make image` builds the image there, without one. This is
# for those who build images with Docker.)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
ARG VERSION=devel
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/berthdev/berth/pkg/version.version=${VERSION} \
    -X github.com/berthdev/berth/pkg/version.commit=${COMMIT}" -o /berth ./cmd/controller

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /berth /berth
USER 65532:65532
ENTRYPOINT ["/berth"]
