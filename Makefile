# Two commands (see README):  make train   and   make test
# The CPU build of torch is installed first, so a fresh clone sets up in a few minutes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
RUN_ID ?= 3DBall

.PHONY: setup setup-dev train test test-slow clean protocol

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"

setup: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# The tests also cover the optional extras: Ray workers and fledge sweep need fledge[ray].
setup-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,ray]"

# Train the built-in 3DBall with its shipped PPO config; results in results/$(RUN_ID)/.
train: setup
	$(BIN)/fledge learn --run-id $(RUN_ID) --force

# Lint, formatting and types first (settings in pyproject.toml), then the whole test suite, one pytest
# worker per core (each test file stays on one worker; tests run torch on one thread).
test: setup-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# The learning runs marked slow (a minute or more each on 2 cores), which make test leaves out.
test-slow: setup-dev
	$(BIN)/python -m pytest -q -m slow -n auto --dist loadfile

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# Regenerate the checked-in Python code of the Unity wire protocol from its .proto files.
protocol: setup-dev
	$(BIN)/python -m grpc_tools.protoc -I src --python_out=src --pyi_out=src --grpc_python_out=src src/fledge/envs/unity/protocol/*.proto
