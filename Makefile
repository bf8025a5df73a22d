# The two commands: `make run` and `make test` (and `make test-cluster`). See README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
LISTEN  ?= 127.0.0.1:8080

.PHONY: run test test-cluster check-deploy build lint fuzz bench load soak clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/corridor ./cmd/corridor

## run: the gateway on the embedded backend, with the demo corridor loaded
run: build
	./bin/corridor serve --demo --listen $(LISTEN) --data data --log-format text --webhook-allow-http --webhook-allow-private

## test: install and start real redis-server and MinIO, run every test with -race, stop them
test:
	./scripts/test.sh

## test-cluster: the failover tests: Sentinel promotes a replica, a Redis Cluster promotes a replica, a MinIO node of 4 dies and comes back
test-cluster:
	./scripts/test-cluster.sh

## check-deploy: haproxy -c, systemd-analyze verify and a start of each Redis configuration under deploy/
check-deploy:
	./scripts/check-deploy.sh

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...

fuzz:
	$(GO) test ./schemas -run '^$$' -fuzz FuzzValidate -fuzztime 60s

## bench: the benchmarks, on the embedded backend and on real Redis + MinIO
bench:
	GOTESTFLAGS=-count=1 ./scripts/test.sh -run '^$$' -bench . -benchmem ./schemas ./exchange ./cmd/corridor

## load: `corridor bench` against a gateway on Redis + MinIO: raw PutObject vs the gateway at -c 4, 16 and 64
load:
	./scripts/load.sh ratio

## soak: 30 minutes at 200 documents/s on Redis + MinIO, p99, RSS and Redis memory each minute (a report, not a test)
soak:
	./scripts/load.sh soak

clean:
	rm -rf bin data
