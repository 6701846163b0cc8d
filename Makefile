# cove: the two commands of the README are `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.PHONY: install demo check test test-unit test-integration test-kernel test-uml bench bench-refs bench-dns bench-ports bench-parallel soak clean

install:
	./scripts/install.sh

demo: install
	tests/sandbox.sh $(PY) -m cove.demo
	tests/sandbox.sh $(PY) -m tests.integration.overlay_demo

test: check test-unit test-integration test-kernel

# Strict (tests/conftest.py): a test that would be skipped fails instead, unless it is on the
# conftest's ALLOWED_SKIPS; each stage prints "cove tests [stage]: N ran" and fails when fewer
# than COVE_MIN_TESTS ran (floors well below today's counts: they catch a stage that silently
# collected or ran nothing, not a removed test or two).
STRICT := COVE_STRICT=1

test-unit: install
	$(STRICT) COVE_STAGE=unit COVE_MIN_TESTS=500 $(PYTEST) -q tests/unit

test-integration: install
	$(STRICT) COVE_STAGE=integration COVE_MIN_TESTS=100 tests/sandbox.sh $(PYTEST) -q tests/integration

# the features this machine's kernel may lack (ipvlan, 802.1q, OVS, ...), in a guest kernel:
# User-Mode Linux where it boots, else Debian's kernel under QEMU (COVE_KERNEL_BACKEND=auto|uml|qemu)
test-kernel: install
	$(STRICT) COVE_STAGE=kernel COVE_MIN_TESTS=10 sh tests/kernel/run.sh

test-uml: test-kernel

# side by side with Docker 20.10, Podman, the CNI plugins and the raw netlink limit; by hand,
# never in CI (BENCH_ARGS=--quick); `make bench-refs` first installs the references from Debian
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

bench-refs: install
	bench/refs/install.sh

# issue #3: resolver qps/latency, cove vs aardvark-dns (podman) vs Docker 20.10; by hand only
bench-dns: install
	$(PY) bench/dnsbench.py $(BENCH_ARGS)

# issue 14: 32 parallel API clients (ops/s, p50/p99, 5xx, duplicates), cove vs dockerd 20.10 vs podman's
# compat API, each in its own sandbox; bench/results/<date>-parallel-refs.md; by hand only
bench-parallel: install
	$(PY) bench/parallel_refs.py $(BENCH_ARGS)

# issue #4: per-port cost up to 10,000 ports on both firewall backends, HTTP through a port; by hand only
bench-ports: install
	$(PY) bench/portsbench.py $(BENCH_ARGS)

# issue 14: kill -9 of the daemon 200 times in a churn loop (kernel == store after each restart, nothing
# acknowledged lost), then 10 minutes of churn; CSV, SVG and summary in bench/results/; by hand only
soak: install
	tests/sandbox.sh $(PY) bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info

# types (mypy --strict), lint (ruff) and layering (import-linter): the versions pinned in pyproject's test extra
check: install
	$(VENV)/bin/mypy
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/lint-imports
