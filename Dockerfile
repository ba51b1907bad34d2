# berth's container image: a static binary on a distroless base, running as a non-root user.
#   docker build -t berth:dev .
# (No Docker engine runs on the project's own machines; this is for those who build images elsewhere.)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /berth ./cmd/controller

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /berth /berth
USER 65532:65532
ENTRYPOINT ["/berth"]
