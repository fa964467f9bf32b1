# Two commands for a fresh machine: `make demo` and `make test`. Both build .venv/ first.
PY      := .venv/bin/python
CLI     := .venv/bin/lstm-edge
STAMP   := .venv/.installed
EXTRAS  := cpu,torch,plots,score,openvino,tract,datasets,ray,test,docs
BUNDLE  := models/adding
ART     := artifacts

.PHONY: demo test test-slow lint format docs clean-venv embed-deps codegen-deps peers

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel first where there is no GPU: an open torch range pulls a multi-GB CUDA build.
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q "torch==2.13.0"; fi
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP) embed-deps
	LSTM_EDGE_ORT_WEB=$(CURDIR)/tests/embed/npm/node_modules/onnxruntime-web/dist $(PY) -m lstm_edge.demo

lint: $(STAMP)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

# The documentation site (mkdocs, material theme) into site/; --strict: a broken link or anchor fails.
docs: $(STAMP)
	.venv/bin/mkdocs build --strict --site-dir site

format: $(STAMP)
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

# -n auto (pytest-xdist): one worker per core; on the 2-core machine 1,228 tests took 7:10 serial at load ~1 and
# 6:53 on two workers at load ~4-5.
test: $(STAMP) embed-deps codegen-deps lint
	$(PY) -m pytest -q -p no:cacheprovider -n auto

# The long corners (B=16 x T=1000 of the parity matrix, every form quantized and verified): ~2 min at load ~4.
# CI runs them after `make test`; a contributor runs `make test` alone.
test-slow: $(STAMP) embed-deps codegen-deps
	$(PY) -m pytest -q -p no:cacheprovider -n auto -m slow

# Node.js packages and Chromium for the embedding tests (onnxruntime-node's postinstall would fetch CUDA).
embed-deps:
	@bash scripts/embed-deps.sh

# clang, the Arm bare-metal toolchain and qemu-system-arm for the codegen tests (Debian packages).
codegen-deps:
	@bash scripts/codegen-deps.sh

# lstm-edge against LiteRT and ExecuTorch (benchmarks/peers.py; never part of `test`). Its own venv, .venv-peers/
# (git-ignored): the CPU torch wheel first, lstm-edge editable, then the peers and the .tflite converter (TensorFlow,
# tf-keras; ~3 GB installed). Writes benchmarks/results/peers.json; ~15 min at load ~5 on the 2-core machine.
PEERS_PY    := .venv-peers/bin/python
PEERS_STAMP := .venv-peers/.installed

$(PEERS_STAMP): pyproject.toml
	test -x $(PEERS_PY) || python3 -m venv .venv-peers
	$(PEERS_PY) -m pip install -q --upgrade pip
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PEERS_PY) -m pip install -q "torch==2.13.0"; fi
	$(PEERS_PY) -m pip install -q -e ".[cpu,torch,plots]"
	$(PEERS_PY) -m pip install -q executorch ai-edge-litert "tensorflow-cpu==2.21.*"
	# tf-keras depends on `tensorflow` (the same module again, twice the size): beside tensorflow-cpu, no deps.
	$(PEERS_PY) -m pip install -q --no-deps "tf-keras==2.21.*"
	touch $(PEERS_STAMP)

peers: $(PEERS_STAMP)
	$(PEERS_PY) benchmarks/peers.py --cache .venv-peers/cache

clean-venv:
	rm -rf .venv .venv-peers
