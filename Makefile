# cove: the two commands of the README are `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.PHONY: install demo test test-unit test-integration test-uml bench clean

install:
	./scripts/install.sh

demo: install
	tests/sandbox.sh $(PY) -m cove.demo

test: install test-unit test-integration

test-unit:
	$(PYTEST) -q tests/unit

test-integration:
	tests/sandbox.sh $(PYTEST) -q tests/integration

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
