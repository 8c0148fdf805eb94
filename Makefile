# nnseq: `make` builds ./nnseq and libnnseq.a; `make check` runs the tests;
# `make asan` runs them again under AddressSanitizer and UBSan; `make data`
# fetches the data sets; `make bench` measures against PyTorch.

CC ?= cc
PKGS := openblas yaml-0.1 zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

OPT ?= -O2 -ftree-vectorize -fvect-cost-model=dynamic -fno-math-errno
CFLAGS ?= $(OPT) -g
WARN := -std=c11 -Ilib -Wall -Wextra -Werror -Wno-format-truncation -D_POSIX_C_SOURCE=200809L
# `make MPI=1` builds with Open MPI (mpicc; Debian's libopenmpi-dev) for
# `mpirun -np N nnseq train`: best in its own BUILD (make MPI=1
# BUILD=build/mpi NNSEQ_BIN=build/mpi/nnseq). The default build has no MPI.
MPI ?=
ifeq ($(MPI),1)
CC := mpicc
WARN += -DNN_MPI
MPI_SRC := lib/train/collective_mpi.c
endif

BUILD ?= build
# ONNX export (issue 17) when protobuf-c's compiler and library and Debian's
# onnx.proto are there (libprotobuf-c-dev protobuf-c-compiler libonnx-dev):
# the proto is compiled to C at build time into $(BUILD)/gen, so nnseq
# follows the onnx.proto the system ships. Without them nnseq builds and
# says ONNX export is unavailable. ONNX=0 leaves it out on purpose.
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
ONNX ?= $(shell command -v protoc-c >/dev/null 2>&1 && test -f $(ONNX_PROTO) && pkg-config --exists libprotobuf-c && echo 1)
ifeq ($(ONNX),1)
ONNX_GEN := $(BUILD)/gen/onnx.pb-c.c
WARN += -DNN_ONNX -I$(BUILD)/gen
PKG_CFLAGS += $(shell pkg-config --cflags libprotobuf-c)
PKG_LIBS += $(shell pkg-config --libs libprotobuf-c)
endif

ALL_CFLAGS := $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) $(PKG_CFLAGS)
LDLIBS := $(PKG_LIBS) -lm

LIB_SRC := $(filter-out lib/train/collective_mpi.c,$(wildcard lib/*/*.c)) $(MPI_SRC)
CLI_SRC := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_SUPPORT := tests/gradcheck.c tests/testutil.c tests/synthetic.c
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(ONNX_GEN:.c=.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
NNSEQ_BIN ?= nnseq

.PHONY: all check asan fuzz data bench clean deps mpi asan-mpi
all: $(NNSEQ_BIN) $(BUILD)/libnnseq.a

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -MMD -MP -c $< -o $@

ifeq ($(ONNX),1)
$(BUILD)/gen/onnx.pb-c.h: $(ONNX_GEN)
$(ONNX_GEN): $(ONNX_PROTO)
	@mkdir -p $(dir $@)
	protoc-c --proto_path=$(dir $(ONNX_PROTO)) --c_out=$(dir $@) $(ONNX_PROTO)
$(BUILD)/lib/io/onnx_export.o: $(BUILD)/gen/onnx.pb-c.h
# producer_version: the version --version prints, from its one definition
$(BUILD)/lib/io/onnx_export.o: ALL_CFLAGS += -DNN_ONNX_PRODUCER_VERSION='$(shell sed -n 's/^\#define NNSEQ_VERSION //p' cli/cli.h)'
$(ONNX_GEN:.c=.o): $(ONNX_GEN)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
endif

# The source revision (git's commit, -dirty with local changes) that
# --version prints, checkpoints record and MPI ranks compare before they
# start; empty outside a git checkout. The stamp changes only with the
# revision, so that only cli/main.o is rebuilt then.
REVISION := $(shell git -C '$(CURDIR)' describe --always --dirty --abbrev=10 2>/dev/null)
$(BUILD)/revision: FORCE
	@mkdir -p $(@D)
	@echo '$(REVISION)' | cmp -s - $@ || echo '$(REVISION)' >$@
$(BUILD)/cli/main.o: $(BUILD)/revision
$(BUILD)/cli/main.o: ALL_CFLAGS += -DNNSEQ_REVISION='"$(REVISION)"'
.PHONY: FORCE
FORCE:

$(BUILD)/libnnseq.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(NNSEQ_BIN): $(CLI_OBJ) $(BUILD)/libnnseq.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libnnseq.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(SUPPORT_OBJ) $(BUILD)/libnnseq.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $< $(SUPPORT_OBJ) $(BUILD)/libnnseq.a $(CHECK_LIBS) $(LDLIBS)

# Small programs the test scripts drive (tests/tools/NAME.c -> TOOLS/NAME).
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/tools/%)
$(BUILD)/tests/tools/%: $(BUILD)/tests/tools/%.o $(BUILD)/tests/synthetic.o $(BUILD)/libnnseq.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)

# The MPI variant that tests/cli_mpi_test.sh runs under mpirun, when Open
# MPI is installed (make deps installs it); the tests skip it otherwise.
# It is built at the normal OPT even under make asan (MPI_OPT), so that
# build/mpi/nnseq stays the binary make bench measures.
MPI_BIN := build/mpi/nnseq
mpi:
	@if command -v mpicc >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory MPI=1 BUILD=build/mpi NNSEQ_BIN=$(MPI_BIN) EXTRA_CFLAGS= \
	        OPT="$(or $(MPI_OPT),$(OPT))" all; \
	else echo "make: no mpicc, so no MPI build (make deps installs libopenmpi-dev)"; fi

# Every test program runs even when one fails; the last line sums them up.
# The end-to-end scripts (tests/cli_*.sh) get the binary under test in NNSEQ.
TEST_SCRIPTS := $(wildcard tests/cli_*.sh)
check: all $(TEST_BIN) $(TOOL_BIN) mpi
	@NNSEQ=$(abspath $(NNSEQ_BIN)) GEN_DATA=$(abspath $(BUILD)/tests/tools/gen_data) \
	    NNSEQ_MPI=$(abspath $(MPI_BIN)) \
	    TOOLS=$(abspath $(BUILD)/tests/tools) \
	    sh tests/run.sh $(TEST_BIN) $(TEST_SCRIPTS)

# The same tests built with AddressSanitizer and UBSan into build/asan,
# two programs at a time (TEST_JOBS, tests/run.sh): sanitized programs
# are slow and mostly single-threaded, and one at a time they took 11 of
# CI's 21 minutes.
asan:
	TEST_JOBS=$${TEST_JOBS:-2} $(MAKE) check BUILD=build/asan NNSEQ_BIN=build/asan/nnseq OPT=-O1 MPI_OPT='$(OPT)' \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

# The MPI variant under AddressSanitizer and UBSan, through cli_mpi_test
# (NNSEQ, the default build, only exports and says MPI is not in; by hand,
# not in CI: it is a third build of everything). Leak checking is
# off: Open MPI's dlopen'ed components leave allocations at exit whose
# stacks hold no nnseq frame.
asan-mpi: all
	$(MAKE) --no-print-directory MPI=1 BUILD=build/asan-mpi NNSEQ_BIN=build/asan-mpi/nnseq OPT=-O1 \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	    build/asan-mpi/nnseq build/asan-mpi/tests/tools/gen_data
	ASAN_OPTIONS=detect_leaks=0 NNSEQ=$(abspath $(NNSEQ_BIN)) NNSEQ_MPI=$(abspath build/asan-mpi/nnseq) \
	    GEN_DATA=$(abspath build/asan-mpi/tests/tools/gen_data) sh tests/run.sh tests/cli_mpi_test.sh

# The libFuzzer harnesses of tests/fuzz (clang, ASan and UBSan): each over
# its committed corpus once, then each for FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
fuzz:
	sh tests/fuzz/run.sh build
	sh tests/fuzz/run.sh replay
	sh tests/fuzz/run.sh fuzz $(FUZZ_SECONDS)

deps:
	sh .ci/deps

data:
	sh data/fetch.sh

bench: all
	sh bench/run.sh

clean:
	rm -rf build nnseq

# `make install` copies ./nnseq (built first) and its man page under
# $(DESTDIR)$(PREFIX), GNU style: `make install PREFIX=/usr DESTDIR=/tmp/stage`
# for a staged or packaged install. The man page goes in uncompressed, as
# upstream installs do; Debian's dh_compress gzips it when packaging.
# `make uninstall` removes exactly those two files.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
INSTALL ?= install
INSTALL_PROGRAM ?= $(INSTALL) -m 755
INSTALL_DATA ?= $(INSTALL) -m 644

.PHONY: install uninstall
install: all
	$(INSTALL) -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(MANDIR)/man1"
	$(INSTALL_PROGRAM) "$(NNSEQ_BIN)" "$(DESTDIR)$(BINDIR)/nnseq"
	$(INSTALL_DATA) docs/nnseq.1 "$(DESTDIR)$(MANDIR)/man1/nnseq.1"

uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/nnseq" "$(DESTDIR)$(MANDIR)/man1/nnseq.1"

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d) $(SUPPORT_OBJ:.o=.d)
