# jinbao: the two set-up commands are `make demo` and `make test` (as root on Debian 12, Python 3.11).
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo .jinbao/bootstrap/bin/uv)
APT_PACKAGES := freetds-bin tdsodbc unixodbc python3-venv
PERSONS ?= 20000

.PHONY: system-deps install demo test lint bench clean

# Debian packages: FreeTDS (tsql, freebcp), its ODBC driver, unixODBC. Installed only when missing.
system-deps:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to install: $(APT_PACKAGES)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	fi

# uv from PyPI into a bootstrap venv when it is not on PATH; then the locked environment into .venv.
install: system-deps
	@if [ ! -x "$(UV)" ]; then python3 -m venv .jinbao/bootstrap && .jinbao/bootstrap/bin/pip install -q uv; fi
	$(UV) sync --frozen --python 3.11

demo: install
	$(UV) run --frozen jinbao demo --persons $(PERSONS)

test: install
	$(UV) run --frozen pytest

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

# The benchmark (bench/, issue 6): jinbao beside naive pandas, dlt and a freebcp + COPY floor, into the local
# PostgreSQL. SCALE=full (1M and 5M contribution rows, under 30 minutes), small (~100k rows), 1m or 5m.
SCALE ?= full
BENCH_ARGS ?=
bench: install
	$(UV) sync --frozen --python 3.11 --group bench
	$(UV) run --frozen --group bench --with py-spy==0.4.3 python -m bench --scale $(SCALE) \
	  --command "make bench SCALE=$(SCALE)$(if $(BENCH_ARGS), BENCH_ARGS='$(BENCH_ARGS)')" $(BENCH_ARGS)

clean:
	rm -rf .jinbao/sim reports jinbao.duckdb
