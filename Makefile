# cove: the two commands of the README are `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.PHONY: install demo test test-unit test-integration test-uml bench bench-refs clean

install:
	./scripts/install.sh

demo: install
	tests/sandbox.sh $(PY) -m cove.demo

test: test-unit test-integration test-uml

test-unit: install
	$(PYTEST) -q tests/unit

test-integration: install
	tests/sandbox.sh $(PYTEST) -q tests/integration

# the features this machine's kernel lacks (ipvlan, 802.1q, ...), in a User-Mode Linux kernel
test-uml: install
	sh tests/uml/run.sh

# side by side with Docker 20.10, Podman, the CNI plugins and the raw netlink limit; by hand,
# never in CI (BENCH_ARGS=--quick); `make bench-refs` first installs the references from Debian
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

bench-refs: install
	bench/refs/install.sh

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
