# rlhf.c — one entry point: make deps | make (all) | make test | make asan | make demo | make bench | make clean
# (and make headline, after make demo)
# Sources are found by wildcard, so a new module (common/x.c), program file (sft/x.c) or test
# (tests/test_x.c defining `Suite *test_x_suite(void)`) needs no edit here.
# Flags: DEV=1 adds -Werror; NATIVE=1 adds -march=native (off by default: CI may run on
# another CPU and results must match across machines); BUILD=dir picks the build directory.

BUILD  ?= build
CC     ?= cc
OPT    ?= -O2
PKGS   := openblas sqlite3 libzmq libpcre2-8 jansson

WARN   := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wdouble-promotion \
          -Wformat=2 -Wvla
ifeq ($(DEV),1)
WARN   += -Werror
endif
ifeq ($(NATIVE),1)
OPT    += -march=native
endif

# OpenBLAS: the OpenMP build (Debian libopenblas-openmp-dev) shares libgomp's thread pool with
# our OpenMP loops; the default pthread build's spinning workers fight them for the cores
# (measured on 2 cores: demo-model step 3x slower, 124M step 1.5x slower). It is linked by path
# with an rpath, so whichever variant the system alternative selects does not matter; without
# it we fall back to plain pkg-config openblas.
BLAS_PC   := $(firstword $(wildcard /usr/lib/*/openblas-openmp/pkgconfig))
ifneq ($(BLAS_PC),)
PKGS      := $(filter-out openblas,$(PKGS))
BLAS_CFLAGS := $(shell PKG_CONFIG_PATH=$(BLAS_PC) pkg-config --cflags openblas 2>/dev/null) \
               -DRLHF_BLAS_OPENMP
BLAS_LIBS := $(shell PKG_CONFIG_PATH=$(BLAS_PC) pkg-config --libs openblas 2>/dev/null) \
             -Wl,-rpath,$(patsubst %/pkgconfig,%,$(BLAS_PC))
endif

# MPI (data-parallel training, common/dist): Open MPI found through pkg-config ompi-c, else
# through its compiler wrapper (mpicc --showme); found, it defines RLHF_MPI. MPI=0 builds
# without it (the binaries are then single-process; mpirun would start independent copies).
MPI ?= 1
ifeq ($(MPI),1)
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null)
ifeq ($(MPI_LIBS),)
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell mpicc --showme:link 2>/dev/null)
endif
ifeq ($(MPI_LIBS),)
$(warning MPI not found (pkg-config ompi-c, mpicc): building single-process; make deps installs Open MPI)
else
MPI_CFLAGS += -DRLHF_MPI
endif
endif

PKG_CFLAGS := $(BLAS_CFLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(MPI_CFLAGS)
PKG_LIBS   := $(BLAS_LIBS) $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(MPI_LIBS)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS  := -std=c11 $(OPT) -g $(WARN) -fopenmp -D_GNU_SOURCE -Icommon -Ipipelines $(PKG_CFLAGS) \
           $(EXTRA_CFLAGS)
LDFLAGS := -fopenmp $(EXTRA_LDFLAGS)
LDLIBS  := $(PKG_LIBS) -lm -lpthread

LIB_SRCS  := $(wildcard common/*.c) $(wildcard pipelines/*.c)
OBJ       := $(BUILD)/obj
LIB_OBJS  := $(LIB_SRCS:%.c=$(OBJ)/%.o)
LIB       := $(BUILD)/librlhf.a
PROG_DIRS := $(foreach p,sft reward ppo,$(if $(wildcard $(p)/*.c),$(p)))
PROGS     := $(PROG_DIRS:%=$(BUILD)/bin/%)

TEST_SUITES  := $(wildcard tests/test_*.c)
TEST_SUPPORT := $(filter-out $(TEST_SUITES) tests/run_tests.c,$(wildcard tests/*.c))
TEST_OBJS    := $(TEST_SUITES:%.c=$(OBJ)/%.o) $(TEST_SUPPORT:%.c=$(OBJ)/%.o) \
                $(OBJ)/tests/run_tests.o
TEST_BIN     := $(BUILD)/bin/run_tests
BENCH_SRCS   := $(filter-out tests/bench/bench_util.c,$(wildcard tests/bench/*.c))
BENCH_BINS   := $(BENCH_SRCS:tests/bench/%.c=$(BUILD)/bench/%)

# Helper programs of the shell integration tests (tests/it/*.c: a tiny reward model, offline
# scores, a raw ZeroMQ client, a rankings database written through common/store), linked with
# the library into $(BUILD)/bin/it/ (a test finds tests/it/NAME.c as $BIN/it/NAME).
IT_TOOLS     := $(patsubst tests/it/%.c,$(BUILD)/bin/it/%,$(wildcard tests/it/*.c))

.PHONY: all deps ensure-deps test test-run asan bench bench-run demo headline clean

all: ensure-deps
	@$(MAKE) --no-print-directory build-all

build-all: $(PROGS) $(TEST_BIN) $(IT_TOOLS)

# Installs the Debian packages (apt-get when root, else prints the exact command) and fetches
# the GPT-2 tokenizer files used by the tests.
deps:
	@bash .ci/deps.sh install

ensure-deps:
	@bash .ci/deps.sh check >/dev/null 2>&1 || bash .ci/deps.sh install

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# ops.c's exp/GELU/softmax loops clamp with float compares; without -fno-trapping-math GCC
# will not if-convert them and leaves the loops scalar (~10% of a training step). It only
# drops the assumption that FP exceptions trap (clang's default); isnan stays reliable.
$(OBJ)/common/ops.o: CFLAGS += -fno-trapping-math

# run.json records the commit a binary was built from (common/cli.c). The stamp changes only
# when the commit (or its -dirty mark) does, so only cli.o is rebuilt.
GIT_COMMIT := $(shell c=$$(git rev-parse --short HEAD 2>/dev/null) || c=unknown; \
                [ $$c = unknown ] || git diff --quiet HEAD -- 2>/dev/null || c=$$c-dirty; echo $$c)
$(OBJ)/git-commit.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(GIT_COMMIT)' > $@.tmp; cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp
$(OBJ)/common/cli.o: $(OBJ)/git-commit.stamp
$(OBJ)/common/cli.o: CFLAGS += -DRLHF_GIT_COMMIT='"$(GIT_COMMIT)"'
.PHONY: FORCE
FORCE:

# AdamW's fused loop calls sqrtf: without errno to set, it vectorizes (same results: scalar and
# vector square roots are both correctly rounded).
$(OBJ)/common/optim.o: CFLAGS += -fno-math-errno

# schemas/rankings.sql is compiled into store.o (nothing reads it at run time): od dumps its
# bytes as hex and sed turns them into the initialiser of a NUL-terminated byte array.
$(OBJ)/schemas/rankings.sql.h: schemas/rankings.sql
	@mkdir -p $(dir $@)
	@{ echo 'static const unsigned char store_schema_sql[] = {'; \
	   od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; echo '0x00};'; } > $@.tmp
	@mv $@.tmp $@
$(OBJ)/common/store.o: $(OBJ)/schemas/rankings.sql.h
$(OBJ)/common/store.o: CFLAGS += -I$(OBJ)/schemas

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

define PROG_RULE
$(BUILD)/bin/$(1): $(patsubst %.c,$(OBJ)/%.o,$(wildcard $(1)/*.c)) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(PROG_DIRS),$(eval $(call PROG_RULE,$(p))))

# One X(module) line per tests/test_<module>.c, regenerated when the set of files changes.
$(OBJ)/tests/suites.inc: $(TEST_SUITES) Makefile
	@mkdir -p $(dir $@)
	@for f in $(TEST_SUITES); do b=$${f#tests/test_}; echo "X($${b%.c})"; done > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

$(OBJ)/tests/%.o: CFLAGS += $(CHECK_CFLAGS) -I$(OBJ)/tests -Icommon -Ipipelines \
                              -DRLHF_SRCDIR='"$(CURDIR)"'
$(OBJ)/tests/run_tests.o: $(OBJ)/tests/suites.inc

# --wrap lets tests/alloc_count.c count malloc/calloc/realloc/free made by our own code,
# so a test can prove a training step allocates nothing.
$(TEST_BIN): $(TEST_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free \
	    -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

test: ensure-deps
	@$(MAKE) --no-print-directory test-run

# Integration tests first (one line each), then the Check runner, whose summary line is last.
test-run: $(PROGS) $(TEST_BIN) $(IT_TOOLS)
	@mkdir -p $(BUILD)/it
	@for t in $(sort $(wildcard tests/it/*.sh)); do \
	    n=$$(basename $$t .sh); \
	    if BIN=$(abspath $(BUILD)/bin) bash $$t > $(BUILD)/it/$$n.log 2>&1; then echo "it: $$n: ok"; \
	    else echo "it: $$n: FAILED (log: $(BUILD)/it/$$n.log)"; tail -n 30 $(BUILD)/it/$$n.log; exit 1; fi; \
	done
	@CK_VERBOSITY=$${CK_VERBOSITY:-minimal} CK_DEFAULT_TIMEOUT=$${CK_DEFAULT_TIMEOUT:-900} $(TEST_BIN)

ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
asan: ensure-deps
	@ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1} \
	 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	 $(MAKE) --no-print-directory BUILD=build-asan OPT="$(ASAN_FLAGS)" \
	     EXTRA_LDFLAGS="-fsanitize=address,undefined" test-run

$(BUILD)/bin/it/%: tests/it/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/%: tests/bench/%.c tests/bench/bench_util.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icommon -Ipipelines -Itests/bench -o $@ $^ $(LDFLAGS) $(LDLIBS)

# bench_model times generation's share inside OpenBLAS: its own wrappers of cblas_sgemm and
# cblas_sgemv stand between every caller in the library and OpenBLAS (this binary only).
$(BUILD)/bench/bench_model: LDFLAGS += -Wl,--wrap=cblas_sgemm -Wl,--wrap=cblas_sgemv

bench: ensure-deps
	@$(MAKE) --no-print-directory bench-run

bench-run: $(BENCH_BINS) $(PROGS)
	@for b in $(BENCH_BINS); do $$b || exit 1; done

# make demo: the whole pipeline into runs/demo (QUICK=1: the tiny one into runs/demo-quick;
# HUMAN=N: you rank N prompts first). A re-run resumes; see pipelines/instructgpt.sh.
demo: ensure-deps
	@$(MAKE) --no-print-directory $(PROGS)
	@QUICK=$(QUICK) BIN=$(BUILD)/bin bash pipelines/instructgpt.sh

# make headline (after make demo): the demo's PPO policy against a larger SFT model.
headline: ensure-deps
	@$(MAKE) --no-print-directory $(PROGS)
	@BIN=$(BUILD)/bin bash pipelines/headline.sh

clean:
	rm -rf build build-asan bench.json

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
