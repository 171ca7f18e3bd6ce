# Switchyard — make targets (each is a thin wrapper; the scripts say what they do with --help).
SWIFT ?= swift

.PHONY: run run-one test bench bench-core bench-flood fuzz soak build release check clean

run:      ## bootstrap, release build, switchyard up: both regions (NATS cluster, Patroni, nodes, proxies, APIs, workers); Ctrl-C stops all
	scripts/up

run-one:  ## one region only, on an ephemeral PostgreSQL and nats-server (scripts/run; --demo places calls)
	scripts/run

test:     ## bootstrap, swift build --build-tests, swift test
	scripts/test

bench:    ## Switchyard vs Kamailio on ../shared/bench (release build); table in .bench/last.txt
	scripts/bench

bench-core: ## the proxy core alone, no sockets: ns, allocations and instructions per call (release build)
	scripts/bench-core

bench-flood: ## legitimate calls at 100/s while another source floods INVITEs (release build)
	scripts/bench-flood

fuzz:     ## libFuzzer over the SIP parser, TCP framer, ESL decoder, regions.yaml loader (60 s each; FUZZ_SECONDS=N)
	scripts/fuzz --seconds $${FUZZ_SECONDS:-60}

soak:     ## steady SIP + API load through the whole stack (10 min; SOAK_MINUTES=N): RSS/fds per process, .soak/rss.svg
	scripts/soak --minutes $${SOAK_MINUTES:-10}

build:    ## debug build: .build/debug/switchyard
	$(SWIFT) build

release:  ## release build: .build/release/switchyard
	$(SWIFT) build -c release

check:    ## validate regions.yaml (debug build of the switchyard product only)
	$(SWIFT) build --product switchyard
	.build/debug/switchyard check regions.yaml

clean:    ## remove build products (keeps fetched packages and .bench results)
	$(SWIFT) package clean
