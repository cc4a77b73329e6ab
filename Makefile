# Zenith: the two commands are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The test suite's own database and Redis database; override to run two suites side by side.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/zenith
TEST_REDIS_URL ?= redis://127.0.0.1:6379/14
TEST_SQLITE_REDIS_URL ?= redis://127.0.0.1:6379/13
PYTEST_ARGS ?=

.PHONY: install run test test-postgres test-sqlite test-faults browser promtool bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py zenith_up

# Debian's Chromium for the browser test (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (echo "installing Debian's chromium for the browser test"; \
	   (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	   (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null))

# promtool, for the alert-rule test: taken out of Debian's prometheus package into the venv
# (only the binary: the package itself would install and start a Prometheus server).
promtool: install
	@command -v promtool >/dev/null 2>&1 || test -x $(VENV)/bin/promtool || \
	  (echo "extracting promtool from Debian's prometheus package"; tmp=$$(mktemp -d) && \
	   (cd $$tmp && apt-get download prometheus >/dev/null 2>&1 && dpkg-deb -x prometheus_*.deb root) && \
	   cp $$tmp/root/usr/bin/promtool $(VENV)/bin/promtool; status=$$?; rm -rf $$tmp; \
	   test $$status -eq 0 || echo "promtool unavailable: the alert-rule test will be skipped")

test: install browser promtool test-postgres test-sqlite

test-postgres:
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

# The embedded default stays honest: the suite again on SQLite, but for what needs PostgreSQL
# itself (pg_terminate_backend, COPY measurements), the browser, the fault suite and the slow
# tests whose behaviour does not depend on the database engine (marked heavy).
test-sqlite:
	DATABASE_URL= REDIS_URL=$(TEST_SQLITE_REDIS_URL) $(PY) -m pytest -m "not postgres and not browser and not faults and not heavy" \
	  $(PYTEST_ARGS)

test-faults: install
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest -m faults -s $(PYTEST_ARGS)

# Zenith beside its outside yardsticks (issue 20's table: bench/README.md): 1M records with
# every CSV field quoted, then as JSON lines; the lean loop, the Celery peer and Zenith over
# HTTP, Zenith again with batches 4x smaller; medians of 3 interleaved runs; then the same on
# a busy machine. Long (about an hour): run it alone.
BENCH_YARDSTICKS = $(PY) bench/yardsticks.py --zenith --skip-lean1
bench: install $(VENV)/.bench-installed
	$(BENCH_YARDSTICKS) --format csv-quoted --small-batches --repeat 3 --out bench/out/ys-quoted.json $(BENCH_ARGS)
	$(BENCH_YARDSTICKS) --format jsonl --repeat 3 --out bench/out/ys-jsonl.json $(BENCH_ARGS)
	$(BENCH_YARDSTICKS) --format csv-quoted --busy --repeat 3 --out bench/out/ys-quoted-busy.json $(BENCH_ARGS)
	$(BENCH_YARDSTICKS) --format jsonl --busy --repeat 3 --out bench/out/ys-jsonl-busy.json $(BENCH_ARGS)

# The engine's own harness (bench/run.py): sizes and worker counts, the status endpoint under
# load, the throttle's cost, profiles; --write-docs rewrites docs/performance.md's tables.
.PHONY: bench-engine bench-scale-out
bench-engine: install
	$(PY) bench/run.py $(BENCH_ARGS)

# One large job on 1, 2, 4 and 8 worker processes (issue 20, goal 4).
bench-scale-out: install
	$(PY) bench/scale_out.py $(BENCH_ARGS)

# Outside yardsticks (bench/yardsticks.py, bench/README.md): the lean no-queue loop in 1 and 2
# processes and the original design on Celery, on one file. Celery is pinned in
# bench/requirements.txt, never in the app's requirements.
.PHONY: bench-yardsticks
$(VENV)/.bench-installed: bench/requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

bench-yardsticks: install $(VENV)/.bench-installed
	$(PY) bench/yardsticks.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
