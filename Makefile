# weaklabel: two commands do all the set-up on a fresh machine.
#   make demo   create .venv, install, build the bundled example end to end
#   make test   create .venv, install, run the whole test suite (JVM and slow tests too)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXAMPLE_POSTS ?= 5000

.PHONY: demo test lint bench bench-deps bench-quality docs check-java check-chromium clean help

help:
	@echo "make demo    build the bundled example end to end (creates .venv)"
	@echo "make test    run the test suite"
	@echo "make lint    ruff + mypy"
	@echo "make bench   text-pipeline and image benchmarks (bench/)"
	@echo "make bench-quality   label quality on every dev corpus (bench/bench_quality.py)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# An editable install has no .pyc files, and where PYTHONDONTWRITEBYTECODE is set
	@# every run compiles weaklabel's modules again (~0.1 CPU s): compile them as a wheel
	@# install would.
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

check-java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "Error: Okt (KoNLPy) needs a Java runtime and none is on PATH."; \
	  echo "Install one:  sudo apt-get install -y default-jre-headless   (Debian/Ubuntu)"; \
	  echo "          or  brew install openjdk                           (macOS)"; \
	  echo "then re-run make."; exit 1; }

# The report test drives a real headless browser; install Debian's chromium when missing.
check-chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing chromium for the report's browser test"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; fi; }

examples/data/posts.csv: examples/generate.py examples/vocab.py | $(STAMP)
	$(BIN)/python examples/generate.py examples/data --posts $(EXAMPLE_POSTS) --workers 2

demo: $(STAMP) check-java examples/data/posts.csv
	$(BIN)/weaklabel build --config configs/example.yaml

test: $(STAMP) check-java check-chromium
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy src

# The image benchmark's peers: imagededup (hashing only, so without torch), jdupes, rmlint.
bench-deps: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/pip install --quiet --no-deps 'imagededup>=0.3'
	command -v jdupes >/dev/null && command -v rmlint >/dev/null || apt-get install -y -qq jdupes rmlint

bench: $(STAMP) check-java
	$(BIN)/python bench/bench_text.py
	$(BIN)/python bench/bench_protect.py
	$(BIN)/python bench/bench_images.py
	$(BIN)/python bench/bench_storage.py

# Label quality on every dev corpus (chatbot, petitions, the bundled example) in one table.
bench-quality: $(STAMP) check-java
	$(BIN)/python bench/bench_quality.py

docs: $(STAMP)
	$(BIN)/python tools/gen_cli_reference.py README.md

clean:
	rm -rf build examples/data examples/build bench/out
