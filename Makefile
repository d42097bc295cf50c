# s3direct build. `make` builds, `make test` runs every test, `make run` starts
# a local S3 server. Every target that compiles first runs scripts/deps.sh
# (fast when everything is installed; set SKIP_DEPS=1 to skip it).

# `CC ?= gcc` alone would never apply: make predefines CC=cc.
ifeq ($(origin CC),default)
CC := gcc
endif
CC ?= gcc
CLANG ?= clang
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
export GO

BUILD := build

# pkg-config is asked lazily, once, at first use: on a fresh machine it (and
# the -dev packages) only exist after the deps target ran.
PKG_MODULES := libcurl libxml-2.0 openssl jansson yaml-0.1
PKG_CFLAGS = $(eval PKG_CFLAGS := $(shell pkg-config --cflags $(PKG_MODULES) 2>/dev/null) \
	$(shell pkg-config --cflags lmdb 2>/dev/null))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $(shell pkg-config --libs $(PKG_MODULES) 2>/dev/null) \
	$(shell pkg-config --libs lmdb 2>/dev/null || echo -llmdb))$(PKG_LIBS)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror=implicit-function-declaration
# Command-line or environment CFLAGS replace -O2 -g; the rest always applies.
CFLAGS ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE $(WARN) -fPIC -pthread
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
ASAN_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -pthread $(ASAN_FLAGS)
INCLUDES := -Icsrc -Icsrc/include
DEPFLAGS = -MMD -MP
LDLIBS = $(PKG_LIBS) -pthread

# --- sources ------------------------------------------------------------------
LIB_SRCS := $(filter-out csrc/s3d.c,$(wildcard csrc/*.c))
LIB_OBJS := $(LIB_SRCS:csrc/%.c=$(BUILD)/obj/%.o)
ASAN_OBJS := $(LIB_SRCS:csrc/%.c=$(BUILD)/asan/%.o)
PUB_HDRS := $(patsubst csrc/include/%,$(BUILD)/include/%,$(wildcard csrc/include/*.h))
# s3d is linked once csrc/s3d.c exists; its commands live in csrc/cli/.
S3D_BIN := $(if $(wildcard csrc/s3d.c),$(BUILD)/s3d)
CLI_SRCS := $(wildcard csrc/cli/*.c)
CLI_OBJS := $(CLI_SRCS:csrc/cli/%.c=$(BUILD)/obj/cli/%.o)

TEST_SRCS := $(wildcard tests/c/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/c/%.c=$(BUILD)/test/%)
SH_TESTS := $(wildcard tests/cli/test_*.sh)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAYS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/test/%)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_OBJS := $(LIB_SRCS:csrc/%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_TIME ?= 60

.PHONY: all build deps test test-minio fuzz run bench-engine bench-proxy bench-presign clean
.DEFAULT_GOAL := build
all: build

# --- deps ---------------------------------------------------------------------
# Always runs the script (a missing tool is noticed); the script is quick when
# everything is present. Compilation waits for it (order-only prerequisite).
deps:
ifeq ($(SKIP_DEPS),1)
	@echo "deps: skipped (SKIP_DEPS=1)"
else
	@scripts/deps.sh
endif

# --- library and s3d -----------------------------------------------------------
build: $(BUILD)/libs3direct.a $(BUILD)/libs3direct.so $(PUB_HDRS) $(S3D_BIN) $(BUILD)/registry
ifeq ($(S3D_BIN),)
	@echo "build: csrc/s3d.c does not exist yet: $(BUILD)/s3d not built"
endif

$(BUILD)/obj/%.o: csrc/%.c | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CPPFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/libs3direct.a: $(LIB_OBJS)
	@test -n "$(LIB_OBJS)" || { echo "build: no library sources in csrc/" >&2; exit 1; }
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libs3direct.so: $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libs3direct.so -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/include/%.h: csrc/include/%.h
	@mkdir -p $(@D)
	cp $< $@

$(BUILD)/obj/cli/%.o: csrc/cli/%.c | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CPPFLAGS) $(INCLUDES) -Icsrc/cli $(PKG_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/s3d: $(BUILD)/obj/s3d.o $(CLI_OBJS) $(BUILD)/libs3direct.a
	$(CC) $(CFLAGS) -o $@ $(BUILD)/obj/s3d.o $(CLI_OBJS) $(BUILD)/libs3direct.a $(LDFLAGS) $(LDLIBS)

# --- registry binary -------------------------------------------------------------
# The stock distribution registry plus the s3direct driver (bridge/driver),
# linked with build/libs3direct.a through cgo. cmd/go does not notice a
# changed library (named in #cgo LDFLAGS): its digest goes in through -X,
# which makes it link again.
LIBDIGEST_VAR := github.com/s3direct/s3direct/bridge/driver.LibraryDigest
GO_SRCS = $(shell find bridge -name '*.go' -not -name '*_test.go' 2>/dev/null)

$(BUILD)/registry: $(BUILD)/libs3direct.a $(PUB_HDRS) $(GO_SRCS) go.mod go.sum | deps
	CGO_ENABLED=1 $(GO) build -ldflags "-X $(LIBDIGEST_VAR)=$$(sha256sum $(BUILD)/libs3direct.a | cut -c1-16)" \
		-o $@ ./bridge/cmd/registry

# --- sanitizer build and tests ---------------------------------------------------
$(BUILD)/asan/%.o: csrc/%.c | deps
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) $(CPPFLAGS) $(INCLUDES) $(PKG_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/asan/libs3direct.a: $(ASAN_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/test/test_%: tests/c/test_%.c tests/c/t.h tests/c/t_s3.h tests/c/t_svc.h $(BUILD)/asan/libs3direct.a | deps
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) $(CPPFLAGS) $(INCLUDES) -Itests/c $(PKG_CFLAGS) \
		-MMD -MP -MF $@.d -MT $@ -o $@ $< $(BUILD)/asan/libs3direct.a $(LDFLAGS) $(LDLIBS)

# Fuzz targets replayed over their committed corpus (tests/fuzz/replay_main.c).
$(BUILD)/test/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(BUILD)/asan/libs3direct.a | deps
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) $(CPPFLAGS) $(INCLUDES) -Itests/c -Itests/fuzz $(PKG_CFLAGS) \
		-MMD -MP -MF $@.d -MT $@ -o $@ $< tests/fuzz/replay_main.c \
		$(BUILD)/asan/libs3direct.a $(LDFLAGS) $(LDLIBS)

# run-tests.sh fails the run when there is no C test at all.
test: build $(TEST_BINS) $(FUZZ_REPLAYS)
	tests/with-s3.sh tests/run-tests.sh $(addprefix c:,$(TEST_BINS)) \
		$(addprefix sh:,$(SH_TESTS)) $(addprefix fuzz:,$(FUZZ_REPLAYS))

# The driver's conformance suite and the crane push/pull tests against MinIO
# instead of versitygw. Builds the pinned MinIO into .tools/bin first
# (scripts/minio.sh: 5-10 minutes once, not part of `make deps`).
test-minio: build
	scripts/minio.sh install
	tests/with-minio.sh sh -c 'rc=0; \
		echo "=== test-minio: go test ./bridge/driver/"; \
		$(GO) test -count=1 -ldflags "-X $(LIBDIGEST_VAR)=$$(sha256sum $(BUILD)/libs3direct.a | cut -c1-16)" ./bridge/driver/ || rc=1; \
		echo "=== test-minio: go test -run TestClients/crane ./tests/integration/"; \
		$(GO) test -count=1 -v -run "^TestClients$$/^crane/" ./tests/integration/ >build/test/minio-crane.log 2>&1 || rc=1; \
		grep -E "^(ok|FAIL|--- )" build/test/minio-crane.log; \
		grep -q -- "--- PASS: TestClients/crane" build/test/minio-crane.log || { echo "test-minio: no crane test ran" >&2; rc=1; }; \
		exit $$rc'

# --- libFuzzer (optional, not part of test) --------------------------------------
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread -O1 -g -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined

$(BUILD)/fuzz/obj/%.o: csrc/%.c | deps
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined $(INCLUDES) \
		$(PKG_CFLAGS) $(DEPFLAGS) -c $< -o $@

.SECONDARY: $(FUZZ_OBJS)
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined $(INCLUDES) -Itests/fuzz \
		$(PKG_CFLAGS) -o $@ $< $(FUZZ_OBJS) $(LDFLAGS) $(LDLIBS)

# Each target for FUZZ_TIME seconds; new inputs go to build/fuzz/corpus/<name>
# (copy the interesting ones into tests/fuzz/corpus/<name> by hand), crashes
# to build/fuzz/artifacts/.
fuzz:
	@command -v $(CLANG) >/dev/null || { echo "fuzz: needs $(CLANG) and its runtimes (Debian: apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
	@test -n "$(FUZZ_SRCS)" || { echo "fuzz: no tests/fuzz/fuzz_*.c" >&2; exit 1; }
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@set -e; for bin in $(FUZZ_BINS); do \
		name=$$(basename $$bin); short=$${name#fuzz_}; \
		mkdir -p $(BUILD)/fuzz/corpus/$$short $(BUILD)/fuzz/artifacts; \
		seed=tests/fuzz/corpus/$$short; test -d $$seed || seed=; \
		echo "=== $$name ($(FUZZ_TIME) s)"; \
		$$bin -max_total_time=$(FUZZ_TIME) -artifact_prefix=$(BUILD)/fuzz/artifacts/$$short- \
			$(BUILD)/fuzz/corpus/$$short $$seed; \
	done

# --- run, bench, clean --------------------------------------------------------------
run: build
	scripts/run.sh

bench-engine: build
	@test -x tests/bench/bench-engine.sh || { echo "bench-engine: tests/bench/bench-engine.sh does not exist yet" >&2; exit 1; }
	tests/bench/bench-engine.sh

bench-proxy: build
	tests/bench/bench-proxy.sh

# Presigned uploads vs the proxy flow vs plain PUTs; finalize latency; presign
# rate (docs/benchmarks.md). BENCH_QUICK=1 is a smoke run.
bench-presign: build
	tests/bench/bench-presign.sh

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(ASAN_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d) \
	$(TEST_BINS:=.d) $(FUZZ_REPLAYS:=.d) $(BUILD)/obj/s3d.d $(CLI_OBJS:.o=.d)
