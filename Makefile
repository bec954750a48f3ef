# The README's two commands: `make train` and `make test`. Both create .venv when missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mlcycle-installed
CONFIG ?= configs/quickstart.yaml
# pytest-xdist workers for `make test` (one per core; each computes on one thread).
TEST_WORKERS ?= auto

.PHONY: install constraints train test browser lint format benchmark clean

install: $(STAMP)

# Every extra (docs/install.md), at the exact releases of constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[all,dev]'
	@# Writes train.py's start-up cache, so --help and config errors answer in well under 3 s.
	@$(PY) scripts/train.py --help > /dev/null
	@touch $(STAMP)

train: install
	$(PY) scripts/train.py --config $(CONFIG)

# lint-imports: the layers of docs/architecture.md (pyproject.toml [tool.importlinter]).
test: install browser
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# The web page test drives Debian's Chromium through Playwright; where it cannot be installed
# (not root, no apt) that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get install -y -q chromium >/dev/null 2>&1; } \
		|| echo "chromium not installed: tests/test_serve_page.py will be skipped"

lint: install
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check src scripts tests benchmarks examples
	$(VENV)/bin/ruff format --check src scripts tests benchmarks examples

format: install
	$(VENV)/bin/ruff format src scripts tests benchmarks examples
	$(VENV)/bin/ruff check --fix src scripts tests benchmarks examples

benchmark: install
	$(PY) benchmarks/overhead.py

# constraints.txt anew: the newest releases within pyproject.toml's ranges, resolved in a
# throwaway venv (torch stays what this machine's pip allows).
constraints:
	@rm -rf $(VENV)-lock && python3 -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet -e '.[all,dev]'
	@{ sed -n '/^#/p;/^#/!q' constraints.txt; $(VENV)-lock/bin/pip freeze --exclude-editable \
		--all | grep -v '^pip=='; } > constraints.txt.new && mv constraints.txt.new constraints.txt
	@rm -rf $(VENV)-lock

clean:
	rm -rf runs lightning_logs .pytest_cache
