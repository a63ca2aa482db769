# Two commands do everything on a fresh machine with Python 3.11:
#   make book   builds the executed course book into _build/html
#   make test   builds the book strictly, then runs the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV)/bin)
# nbgrader runs `alembic` as a subprocess: the venv's bin must be on PATH.
export PATH := $(BIN):$(PATH)
# Every command that may load TensorFlow runs with the course's environment
# (src/regcourse/environment.py: the same bits on every machine, no C++ log lines),
# which TensorFlow reads when it loads, before any notebook code runs.
COURSE_ENV := $(BIN)/python -m regcourse.environment

INSTALLED := $(VENV)/.installed
PACKAGE_SOURCES := $(wildcard src/regcourse/*.py)
PACKAGE_STAMP := _build/.package-stamp

ASSIGNMENT_IDS = $(shell sed -n 's/^    "\(a[0-9]_[a-z_]*\)",$$/\1/p' nbgrader_config.py)

.PHONY: install book test test-judge test-stock clean regen-results assignments benchmark student-kit

install: $(INSTALLED)

# uv installs the same versions as pip from the same index, in a quarter of the time (17 s against 61 s
# for TensorFlow and the rest on the 2-core machine); its own version is pinned in pyproject.toml's dev extra.
# --system-certs: the machine's certificate store, as pip's configuration reaches it (a proxy that
# re-signs TLS has its authority there, not in uv's own bundle). Where uv cannot be had or cannot
# install, pip installs the same, slower, and says so.
UV_REQUIREMENT = $(shell sed -n 's/^ *"\(uv[<>=][^"]*\)",.*/\1/p' pyproject.toml)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet '$(UV_REQUIREMENT)' \
	  && $(BIN)/uv pip install --quiet --system-certs --python $(BIN)/python -e '.[dev,postgres]' \
	  || { echo "uv could not install (see above): installing with pip instead, about a minute"; \
	       $(BIN)/python -m pip install --quiet -e '.[dev,postgres]'; }
	touch $@

# The execution cache is keyed on each chapter's own source; a change to the
# shared package must re-execute every chapter, so it clears the cache, and
# Sphinx's saved environment with it (else Sphinx, seeing no source changed,
# would not read the chapters again and the pages would keep their old outputs).
$(PACKAGE_STAMP): $(PACKAGE_SOURCES) | $(INSTALLED)
	rm -rf _build/.jupyter_cache _build/.doctrees
	mkdir -p _build
	touch $@

# The chapters are executed first, one per core, into the build's own execution cache
# (regcourse.book_execution); jupyter-book then renders them from it.
book: $(INSTALLED) $(PACKAGE_STAMP)
	$(COURSE_ENV) $(BIN)/python -m regcourse.book_execution
	$(COURSE_ENV) $(BIN)/jupyter-book build . -W -n --keep-going

# Two pytest workers (pytest-xdist), one test module at a time each: the assignments' grading (its
# own two grading workers busy) and the rest of the suite (mostly one process waiting on another) side by side.
test: book
	$(COURSE_ENV) $(BIN)/python -m pytest -n 2 --dist loadscope

# Every assignment variant judged in-process, without grading (a few minutes; test_assignments.py,
# part of `make test`, checks the same verdicts end to end). REGCOURSE_TEST_ONLY is not read here: use -k.
test-judge: $(INSTALLED)
	$(COURSE_ENV) $(BIN)/python -m pytest tests/test_judge.py -m judge_variants

# Every variant submission graded by stock nbgrader as well as by the engine (about 40 min; `make test`
# grades a sample with stock nbgrader: the instructor's notebook, the release, every correct variant).
test-stock: $(INSTALLED)
	REGCOURSE_STOCK=all $(COURSE_ENV) $(BIN)/python -m pytest tests/test_assignments.py

# Accept the current executed chapters as the new reviewed regression results
# (review the diff with `git diff tests/notebook_results` before committing).
regen-results: book
	$(COURSE_ENV) $(BIN)/python -m pytest tests/test_chapter_regression.py tests/test_assignments.py -k matches_reviewed_result --regen-results

# exercises/ is always the output of stock nbgrader on solutions/ (checked by the tests).
assignments: $(INSTALLED)
	for id in $(ASSIGNMENT_IDS); do $(BIN)/nbgrader generate_assignment $$id --force || exit 1; done

# What students receive: _build/student-kit/ (push it as the student repository that
# _config.yml's repository.url names) and _build/student-kit.zip. The chapters' outputs
# come from the book build; the kit is scanned for leaks before it is written.
student-kit: book
	$(COURSE_ENV) $(BIN)/python -m regcourse.student_kit

benchmark: $(INSTALLED)
	$(COURSE_ENV) $(BIN)/python benchmarks/autograde_times.py

clean:
	rm -rf _build
