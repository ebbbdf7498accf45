# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
FUZZ_SECONDS ?= 30

.PHONY: run test check lint types contracts pytest fuzz bench system-deps browser-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The C sources too: an edited media fast path is rebuilt (by pip) before the tests run.
$(VENV)/.installed: pyproject.toml $(wildcard src/callwarden/media/csrc/*) | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The pages' live WebSockets are accepted only from allowed origins: the demo's own address
# (HTTPS, with the self-signed certificate made in $(DATA_DIR)/tls/ on first start).
run: $(VENV)/.installed
	CALLWARDEN_ALLOWED_ORIGINS=$${CALLWARDEN_ALLOWED_ORIGINS:-https://127.0.0.1:8080,https://localhost:8080} \
		$(BIN)/callwarden demo --data-dir $(DATA_DIR)

# Debian packages the tests and benchmarks drive: SIPp (SIP load), rtpengine (media reference),
# coturn (the browser phone's TURN relay, tests/integration/test_webrtc_codecs_turn.py).
system-deps:
	@missing=""; \
	command -v sipp >/dev/null || missing="$$missing sip-tester"; \
	command -v rtpengine >/dev/null || missing="$$missing rtpengine-daemon"; \
	command -v turnserver >/dev/null || missing="$$missing coturn"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The browser tests drive Debian's Chromium (Playwright never downloads a browser of its own);
# a Japanese font so that the pages' screenshots (build/screenshots/) show Japanese text.
browser-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -e /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf ] || missing="$$missing fonts-ipafont-gothic"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: $(VENV)/.installed
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

types: $(VENV)/.installed
	$(BIN)/mypy

contracts: $(VENV)/.installed
	$(BIN)/lint-imports

pytest: $(VENV)/.installed system-deps browser-deps
	$(BIN)/pytest

check: lint types contracts

test: check pytest

fuzz: $(VENV)/.installed
	CALLWARDEN_FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/pytest -q tests/fuzz -p no:cacheprovider --hypothesis-profile=long

bench: $(VENV)/.installed system-deps
	$(BIN)/python benchmarks/sip_cps.py
	$(BIN)/python benchmarks/media.py

clean:
	rm -rf $(VENV) build *.egg-info
