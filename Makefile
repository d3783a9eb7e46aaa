# smsrouter — see README.md. Every target works on a fresh checkout.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# make bench: micro-benchmarks run BENCHTIME each (Go picks the iterations, so a
# figure is a warm average, not one cold run); the end-to-end ones in E2E time their
# passes by hand next to a baseline measured in the same run, and run one iteration
# each. COUNT=6 repeats everything for benchstat. Narrow with BENCH (micro) and E2E:
# make bench BENCH=Parse E2E=    or    make bench BENCH=none E2E=Chaninfo
BENCH   ?= .
BENCHTIME ?= 1s
COUNT   ?= 1
E2E     ?= ^Benchmark(DrainThroughput|DrainFloor|DrainGrowth|ServeHandoff|Chaninfo|ChaninfoPaced|SendAPI|OneShotDrain|LinkSubmit|LinkMOLatency)$$
E2E_ALL := ^Benchmark(DrainThroughput|DrainFloor|DrainGrowth|ServeHandoff|Chaninfo|ChaninfoPaced|SendAPI|OneShotDrain|LinkSubmit|LinkMOLatency)$$
FUZZTIME ?= 15s

PREFIX  ?= /usr/local
DESTDIR ?=

.PHONY: build test bench demo lint fuzz clean install

# Static (no cgo): it starts faster, since there is no dynamic loader or libc
# to set up, and every dialplan System() drain pays the start. The pure-Go
# resolver and user lookup it implies read /etc/hosts, DNS and /etc/passwd only
# (no NSS modules); set CGO_ENABLED=1 for those.
build: ## the binary, in bin/
	CGO_ENABLED=$${CGO_ENABLED:-0} $(GO) build -ldflags "$(LDFLAGS)" -o bin/smsrouter ./cmd/smsrouter

test: ## vet and every test with the race detector (needs MariaDB on 127.0.0.1:3306; .ci/run starts it)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

bench: ## the speed targets, printed next to baselines measured in the same run
	$(GO) test -run '^$$' -bench '$(BENCH)' -skip '$(E2E_ALL)' -benchtime $(BENCHTIME) -count $(COUNT) -benchmem ./...
	$(if $(E2E),$(GO) test -run '^$$' -bench '$(E2E)' -benchtime 1x -count $(COUNT) -timeout 60m ./...)

demo: ## the main job on the embedded default: sample messages, a real drain, what it wrote
	$(GO) run ./cmd/smsrouter demo

lint: ## formatting and vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

install: build ## binary to $(PREFIX)/bin, the systemd unit, /etc/asterisk/smsrouter.toml (only if absent)
	install -D -m 0755 bin/smsrouter $(DESTDIR)$(PREFIX)/bin/smsrouter
	install -d $(DESTDIR)/etc/systemd/system $(DESTDIR)$(PREFIX)/share/doc/smsrouter
	sed 's|/usr/local/|$(PREFIX)/|g' packaging/smsrouter.service > $(DESTDIR)/etc/systemd/system/smsrouter.service
	chmod 0644 $(DESTDIR)/etc/systemd/system/smsrouter.service
	install -m 0644 README.md smsrouter.example.toml $(DESTDIR)$(PREFIX)/share/doc/smsrouter/
	@if [ -e $(DESTDIR)/etc/asterisk/smsrouter.toml ]; then \
	  echo "kept the existing $(DESTDIR)/etc/asterisk/smsrouter.toml"; \
	else \
	  install -D -m 0640 smsrouter.example.toml $(DESTDIR)/etc/asterisk/smsrouter.toml; \
	  chgrp asterisk $(DESTDIR)/etc/asterisk/smsrouter.toml 2>/dev/null || true; \
	fi
	@echo "next: smsrouter migrate --config /etc/asterisk/smsrouter.toml; smsrouter doctor --config /etc/asterisk/smsrouter.toml;"
	@echo "      systemctl daemon-reload && systemctl enable --now smsrouter"

clean:
	rm -rf bin
