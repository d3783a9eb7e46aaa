# smsrouter — see README.md. Every target works on a fresh checkout.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BENCH   ?= .
BENCHTIME ?= 1x
FUZZTIME ?= 15s

.PHONY: build test bench demo lint fuzz clean

build: ## the binary, in bin/
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/smsrouter ./cmd/smsrouter

test: ## vet and every test with the race detector (needs MariaDB on 127.0.0.1:3306; .ci/run starts it)
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

bench: ## the speed targets, printed next to baselines measured in the same run
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./...

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

clean:
	rm -rf bin
