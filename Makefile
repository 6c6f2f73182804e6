# mos build entry points. CI runs .ci/run, which ends in `make test`.

# CI's PATH may lack Go: fall back to the standard install location, and
# put that directory first on PATH so tools that run `go` themselves agree.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
ifneq ($(filter /%,$(GO)),)
export PATH := $(patsubst %/,%,$(dir $(GO))):$(PATH)
endif

# Version stamp for `mos version`. Outside a git checkout (a source
# tarball) it is "dev". The date is the commit's, not the build's, so the
# same commit builds the same binary.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null)
DATE    ?= $(shell git log -1 --format=%cI 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

TEST_TIMEOUT ?= 10m
FUZZ_TIME    ?= 20s

# Fuzz targets, as package:FuzzName. `go test -fuzz` takes one target per
# run, so each is listed; add new ones here.
FUZZ_TARGETS := \
	./slip:FuzzDecoder \
	./rfc2217:FuzzParser \
	./rfc2217:FuzzRoundTrip \
	./fwimage:FuzzParse \
	./fwimage:FuzzPartitionTable \
	./fwbundle:FuzzRead

# Prerequisites of `make test`: the Debian packages the tests need
# (installed when missing), then the pinned npm packages the interop tests
# run (esptool-js, the judge of the virtual device).
TEST_DEPS ?= system-deps interop-deps

.PHONY: all build test system-deps interop-deps demo demo-wifi bench fuzz clean release man

all: build

# -buildvcs=false: LDFLAGS already carries the version, and VCS stamping
# fails outright when git is missing or refuses the checkout (CI as root).
build:
	$(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)' -o bin/mos ./cmd/mos

test: $(TEST_DEPS)
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

system-deps:
	@scripts/test-deps.sh

# npm packages used by the interop tests (reference implementations run
# against our code). npm ci installs exactly what package-lock.json pins.
# A stamp file keeps `make test` from reinstalling when the lockfile is
# unchanged.
INTEROP_NODE := interop/node
interop-deps: $(INTEROP_NODE)/node_modules/.installed

$(INTEROP_NODE)/node_modules/.installed: $(INTEROP_NODE)/package.json $(INTEROP_NODE)/package-lock.json
	npm ci --prefix $(INTEROP_NODE) --no-audit --no-fund
	touch $@

# The main job on an embedded default: a virtual ESP32 with real wire and
# flash timing (its flash kept in bin/) taken from blank to a securely
# connected device by one mos provision: the embedded demo firmware flashed
# and booted, joined to the virtual Wi-Fi, its own key made on the device,
# a certificate from a demo fleet CA (bin/demo-ca, demo passphrase), and a
# mutual-TLS connection to the embedded broker on a loopback port, which
# prints the device's hello. A second run is quick: nothing needs
# re-flashing, reconfiguring or registering. `make demo-wifi` stops before
# the cloud step.
DEMO_PORT := sim://esp32?flash-file=bin/demo-esp32.flash
DEMO_BROKER := 127.0.0.1:18883
demo: build
	@export MOS_CA_PASSPHRASE=mos-demo-ca-passphrase; \
	test -f bin/demo-ca/root.crt || ./bin/mos ca init --ca-dir bin/demo-ca --name 'mos demo fleet' >/dev/null; \
	./bin/mos broker --ca-dir bin/demo-ca --listen $(DEMO_BROKER) & broker=$$!; \
	trap 'kill $$broker 2>/dev/null; wait $$broker 2>/dev/null' EXIT; \
	./bin/mos --port '$(DEMO_PORT)' provision --wifi-ssid mos-demo-net --wifi-pass demo-pass-1234 \
		--set debug.level=3 --cloud mqtt --broker $(DEMO_BROKER) --ca-dir bin/demo-ca; rc=$$?; \
	sleep 1; exit $$rc

demo-wifi: build
	./bin/mos --port '$(DEMO_PORT)' provision --wifi-ssid mos-demo-net --wifi-pass demo-pass-1234 --set debug.level=3

bench: build interop-deps
	$(GO) run ./bench
	# Cloud registration, host side: time per `mos cloud mqtt register`
	# (embedded broker) and `mos cloud aws register` (local IoT endpoint),
	# first run and re-run, with the AWS calls each makes (aws-calls/op),
	# against a stand-in device; see cloud/bench_test.go.
	$(GO) test -run '^$$' -bench 'Register' -benchtime 5x ./cloud

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz: $$name in $$pkg for $(FUZZ_TIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZ_TIME) $$pkg; \
	done

# Release archives (linux, darwin, windows on amd64 and arm64), .deb and
# .rpm, and SHA256SUMS in dist/. Reproducible from a commit: every time in
# the output is the commit's date (EPOCH), paths are trimmed, nfpm is
# pinned in packaging/nfpm/go.mod. See packaging/release.sh.
EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DIST  ?= dist
release:
	GO='$(GO)' VERSION='$(VERSION)' COMMIT='$(COMMIT)' DATE='$(DATE)' EPOCH='$(EPOCH)' DIST='$(DIST)' \
		sh packaging/release.sh

# Man pages (section 1 per command, section 7 per help topic), generated
# from the command tree, so they say what --help says: bin/man/.
MAN_DIR ?= bin/man
man:
	$(GO) run -trimpath -buildvcs=false -ldflags '$(LDFLAGS)' ./cmd/mos man $(MAN_DIR)

clean:
	rm -rf bin dist

include firmware-images/Makefile.inc
