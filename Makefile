# Quick start: `make run` and `make test`. Both create .venv when it is missing
# or older than pyproject.toml, so a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed-test
DOCS_STAMP := $(VENV)/.installed-docs
PYTEST_ARGS ?=

.PHONY: run test lint audit bench bench-quick docs lock clean test-uvicorn-oldest

# `make run` installs the runtime only; `make test` adds the test and deploy-check tools.
# Every install is constrained to the versions CI last passed with (constraints.txt, `make lock`).
PIP_INSTALL := $(BIN)/python -m pip install --quiet -c constraints.txt

$(RUN_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP_INSTALL) -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PIP_INSTALL) -e '.[test,deploy]'
	touch $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/python -m gateway

lint: $(STAMP)
	$(BIN)/ruff check vibe_actors phoenix gateway tests benchmarks examples
	$(BIN)/ruff format --check vibe_actors phoenix gateway tests benchmarks examples
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r vibe_actors phoenix gateway
	$(BIN)/yamllint wiring.yaml deploy

# Known vulnerabilities in the installed dependencies (pip-audit, PyPI's advisory database).
# A vulnerability fails; a database that cannot be reached, or that knows none of the installed
# packages (an offline mirror), is said plainly and does not fail: CI may run without network.
AUDIT_LOG := $(VENV)/pip-audit.log
AUDIT_OFFLINE := ConnectionError|ProxyError|ConnectTimeout|ReadTimeout|NameResolutionError|Max retries exceeded|Temporary failure in name resolution|Network is unreachable
audit: $(STAMP)
	@$(BIN)/pip-audit --skip-editable --progress-spinner off > $(AUDIT_LOG) 2>&1; status=$$?; \
	total=$$($(BIN)/python -m pip list --exclude-editable --format=freeze 2>/dev/null | wc -l); \
	skipped=$$(grep -c 'could not be audited' $(AUDIT_LOG)); \
	if grep -qE '$(AUDIT_OFFLINE)' $(AUDIT_LOG); then \
		echo "audit: NOT RUN - pip-audit cannot reach its vulnerability database:"; \
		grep -oE '($(AUDIT_OFFLINE)).{0,160}' $(AUDIT_LOG) | tail -1; \
		echo "audit: nothing was audited; not a failure (full log: $(AUDIT_LOG))"; \
	elif [ $$status -eq 0 ] && [ $$skipped -ge $$total ]; then \
		echo "audit: NOT RUN - the vulnerability database knows none of the $$total installed"; \
		echo "audit: packages (a mirror or an offline index?); nothing was audited; not a failure"; \
		echo "audit: (full log: $(AUDIT_LOG))"; \
	else \
		cat $(AUDIT_LOG); \
		[ $$skipped -eq 0 ] || echo "audit: $$skipped of $$total packages could not be audited"; \
		exit $$status; \
	fi

# coverage starts before pytest: the installed pytest plugin (phoenix.pytest_plugin)
# imports the packages while pytest loads plugins, before pytest-cov would start.
test: lint
	$(BIN)/python -m coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/python -m coverage report --fail-under=90

# The bench extra (matplotlib, xoscar) goes into the same venv, never into the runtime's deps.
bench: $(STAMP)
	$(PIP_INSTALL) -e '.[bench]'
	$(BIN)/python -m benchmarks

# Proves every benchmark and the report generator still run (CI); asserts no timing.
bench-quick: $(STAMP)
	$(PIP_INSTALL) -e '.[bench]'
	$(BIN)/python -m benchmarks --quick

# Reliability (docs/reliability.md): chaos, crash storms, hung agents, SIGKILL, SIGTERM under
# load, bad input, security and soak against real gateway processes. `make test` runs the
# fast variants; these run the full ones too (reliability_full, VIBE_RELIABILITY_FULL=1).
SOAK_SECONDS ?= 300
.PHONY: reliability soak

reliability: $(STAMP)
	VIBE_RELIABILITY_FULL=1 VIBE_SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m pytest -p no:cacheprovider -rA tests/reliability $(PYTEST_ARGS)

soak: $(STAMP)
	VIBE_RELIABILITY_FULL=1 VIBE_SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m pytest -p no:cacheprovider -s -k full tests/reliability/test_soak.py $(PYTEST_ARGS)

# The docs extra (mkdocs, Material, mkdocstrings) goes into the same venv. --strict: a broken
# link, a missing snippet or an unresolved reference fails the build. The site is build/site.
$(DOCS_STAMP): $(RUN_STAMP)
	$(PIP_INSTALL) -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict

# Ray placement (docs/scaling.md): the ray extra, and one local cluster on 127.0.0.1
# for the test session (~0.7 GB). `make test` never needs Ray.
RAY_STAMP := $(VENV)/.installed-ray
.PHONY: test-ray bench-ray
$(RAY_STAMP): $(STAMP)
	$(PIP_INSTALL) -e '.[ray]'
	touch $(RAY_STAMP)

test-ray: $(RAY_STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -m ray tests/ray $(PYTEST_ARGS)

bench-ray: $(RAY_STAMP)
	$(BIN)/python -m benchmarks.ray_placement --quick

# The gateway subclasses uvicorn internals (its httptools protocol, its signal handling), so
# pyproject pins uvicorn to the range its tests passed with. This runs tests/gateway against the
# oldest of that range: a throwaway venv holding only that uvicorn, layered over .venv's packages
# (so it takes seconds, not a fresh install). Keep UVICORN_OLDEST equal to pyproject's lower bound.
UVICORN_OLDEST ?= 0.45.0
OLDEST_VENV := .venv-uvicorn-oldest
test-uvicorn-oldest: $(STAMP)
	rm -rf $(OLDEST_VENV)
	$(BIN)/python -m venv --without-pip $(OLDEST_VENV)
	$(BIN)/python -c "import site, sys; print('import site; site.addsitedir(%r)' % site.getsitepackages()[0])" \
		> "$$($(OLDEST_VENV)/bin/python -c 'import site; print(site.getsitepackages()[0])')/zz-vibe-venv.pth"
	$(BIN)/python -m pip install --quiet --no-deps --target \
		"$$($(OLDEST_VENV)/bin/python -c 'import site; print(site.getsitepackages()[0])')" 'uvicorn==$(UVICORN_OLDEST)'
	$(OLDEST_VENV)/bin/python -c "import uvicorn, sys; assert uvicorn.__version__ == '$(UVICORN_OLDEST)', uvicorn.__file__; print('uvicorn', uvicorn.__version__, 'from', uvicorn.__file__)"
	$(OLDEST_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/gateway $(PYTEST_ARGS)
	rm -rf $(OLDEST_VENV)

# Re-resolve every dependency (all extras) in a scratch venv and write constraints.txt.
LOCK_VENV := .venv-lock
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet -e '.[test,deploy,bench,docs,ray]'
	{ sed -n '1,3p' constraints.txt; $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .coverage
