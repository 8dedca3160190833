# switchyard: one top-level, non-recursive Makefile.
#   make            build/switchyard (optimised, no sanitizers)
#   make test       install deps, build everything under ASan+UBSan, run every test
#   make run        install deps, build, run switchyard on conf/switchyard.ini
#   make install PREFIX=/usr/local   binaries, man pages, systemd unit, examples
# SPDX-License-Identifier: MIT

BUILD   ?= build
PREFIX  ?= /usr/local
CONF    ?= conf/switchyard.ini
V       ?= 0
ifeq ($(V),0)
Q := @
else
Q :=
endif

CC      ?= cc
CXX     ?= c++
PKGS    := libevent libevent_pthreads libnghttp2 libcares libprotobuf-c inih jansson libjwt libcrypto \
           libevent_openssl libssl
TPKGS   := criterion
GPKGS   := grpc
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpedantic
# The one C++ file (REST transcoding: libprotobuf's JSON mapping) keeps -Werror.
CXXWARN := -Wall -Wextra -Werror -Wshadow -Wpedantic
XPKGS   := protobuf
OPT     ?= -O2
SAN     ?=
GEN     := $(BUILD)/gen
CPPFLAGS_ALL := -I. -I$(GEN) -D_GNU_SOURCE
CFLAGS_ALL    = -std=c11 -g $(OPT) $(WARN) $(SAN) -pthread -MMD -MP
CXXFLAGS_ALL  = -std=c++17 -g $(OPT) $(CXXWARN) $(SAN) -pthread -MMD -MP
X_CFLAGS     := $(shell pkg-config --cflags $(XPKGS) 2>/dev/null)
X_LIBS       := $(shell pkg-config --libs $(XPKGS) 2>/dev/null)
PKG_CFLAGS   := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS     := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# HTTP/1.1 parsing (proxy/h1.c): Debian's libhttp-parser-dev has no .pc file.
PKG_LIBS     += -lhttp_parser
T_CFLAGS     := $(shell pkg-config --cflags $(TPKGS) 2>/dev/null)
T_LIBS       := $(shell pkg-config --libs $(TPKGS) 2>/dev/null)
G_CFLAGS     := $(shell pkg-config --cflags $(GPKGS) 2>/dev/null)
G_LIBS       := $(shell pkg-config --libs $(GPKGS) 2>/dev/null)

# The shipped binaries record only the libraries they really use, so the
# runtime image (docker/Dockerfile) needs only those packages.
SHIP_LDFLAGS := -Wl,--as-needed

HEALTH_PROTO := /usr/share/grpc-proto/grpc/health/v1/health.proto
REFLECT_PROTO := /usr/share/grpc-proto/grpc/reflection/v1/reflection.proto

CORE_SRCS := $(wildcard core/*.c)
CONF_SRCS := conf/conf.c
BAL_SRCS  := $(wildcard balancer/*.c)
HC_SRCS   := $(filter-out health/cli%.c,$(wildcard health/*.c))
PROXY_SRCS := $(filter-out proxy/main.c,$(wildcard proxy/*.c proxy/filters/*.c))
PROXY_CXX_SRCS := $(wildcard proxy/filters/*.cc)
LIB_SRCS  := $(CORE_SRCS) $(CONF_SRCS) $(BAL_SRCS) $(HC_SRCS) $(PROXY_SRCS)

HEALTH_PB_OBJ := $(GEN)/grpc/health/v1/health.pb-c.o
REFLECT_PB_OBJ := $(GEN)/grpc/reflection/v1/reflection.pb-c.o
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(HEALTH_PB_OBJ) $(REFLECT_PB_OBJ)
# REST transcoding's C++ side (libprotobuf, libstdc++) is not in the binary:
# it is the module switchyard-rest.so, which transcode_mod.o loads with
# dlopen() when a configuration transcodes. Tests and fuzz harnesses link
# REST_PB_OBJS directly in place of transcode_mod.o.
REST_MOD      := $(BUILD)/switchyard-rest.so
REST_MOD_OBJ  := $(BUILD)/proxy/filters/transcode_mod.o
REST_PB_OBJS  := $(PROXY_CXX_SRCS:%.cc=$(BUILD)/%.o)
REST_MOD_LIBS := $(shell pkg-config --libs libevent jansson 2>/dev/null) $(X_LIBS)
CONF_OBJS := $(CONF_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/core/grpc.o # exempt: grpc_path_is_canonical()
BAL_OBJS  := $(BAL_SRCS:%.c=$(BUILD)/%.o)
HC_OBJS   := $(HC_SRCS:%.c=$(BUILD)/%.o) $(HEALTH_PB_OBJ)

# Test peers (gRPC C core): generated echo + health messages, backend, client library.
PEER_GEN_SRCS := $(GEN)/tests/peers/echo.pb-c.c $(GEN)/grpc/health/v1/health.pb-c.c
PEER_LIB_SRCS := $(filter-out tests/peers/backend.c tests/peers/client_main.c,$(wildcard tests/peers/*.c))
PEER_LIB_OBJS := $(PEER_LIB_SRCS:%.c=$(BUILD)/%.o) $(PEER_GEN_SRCS:%.c=%.o)
SUPPORT_SRCS  := $(wildcard tests/support/*.c)
SUPPORT_OBJS  := $(SUPPORT_SRCS:%.c=$(BUILD)/%.o)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
INTEG_SRCS := $(wildcard tests/integration/test_*.c)
INTEG_BINS := $(INTEG_SRCS:tests/integration/%.c=$(BUILD)/tests/integration/%)

BIN := $(BUILD)/switchyard
PEER_BINS := $(BUILD)/tests/peers/sy-backend $(BUILD)/tests/peers/sy-client

# switchyard-health, the operator CLI: gRPC C core + jansson, none of the proxy's objects.
CLI_PKGS   := jansson libprotobuf-c
CLI_CFLAGS := $(shell pkg-config --cflags $(CLI_PKGS) 2>/dev/null) $(G_CFLAGS)
CLI_LIBS   := $(shell pkg-config --libs $(CLI_PKGS) 2>/dev/null) $(G_LIBS)
CLI_SRCS   := $(wildcard health/cli*.c)
CLI_OBJS   := $(CLI_SRCS:%.c=$(BUILD)/%.o)
HEALTH_BIN := $(BUILD)/switchyard-health

.PHONY: all deps test unit integration asan run install clean format format-check
.SECONDARY:

all: $(BIN) $(REST_MOD) $(HEALTH_BIN)

deps:
	$(Q)bash scripts/deps.sh

# C only: no libprotobuf, no libstdc++. The REST module is built with the
# binary (same flags, sanitizers included: it is loaded into this process).
$(BIN): $(BUILD)/proxy/main.o $(LIB_OBJS) | $(REST_MOD)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS_ALL) $(SHIP_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

# -Bsymbolic: the module's tc_*() call each other, never the binary's
# forwarders of the same names; -z defs: every symbol it uses has a library.
$(REST_MOD): $(REST_PB_OBJS)
	@echo "  LD      $@"
	$(Q)$(CXX) $(CXXFLAGS_ALL) -shared $(SHIP_LDFLAGS) -Wl,-Bsymbolic -Wl,-z,defs -o $@ $^ \
	    $(REST_MOD_LIBS) -lpthread

# Where the binary looks for the module last (after its own directory and
# ../lib/switchyard from it, which is where make install puts it whatever the
# PREFIX). A command-line define: installing with another PREFIX rebuilds
# nothing (test_deploy installs the binaries make test built).
$(REST_MOD_OBJ): CPPFLAGS_ALL += -DSY_MODULE_DIR='"$(PREFIX)/lib/switchyard"'

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(PKG_CFLAGS) $(if $(findstring tests/,$<),$(T_CFLAGS) $(G_CFLAGS)) -c -o $@ $<

$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	@echo "  CXX     $<"
	$(Q)$(CXX) $(CPPFLAGS_ALL) $(CXXFLAGS_ALL) -fPIC $(PKG_CFLAGS) $(X_CFLAGS) -c -o $@ $<

# Generated protobuf-c code: build time only, never committed or formatted.
$(GEN)/grpc/health/v1/health.pb-c.c $(GEN)/grpc/health/v1/health.pb-c.h &: $(HEALTH_PROTO)
	@mkdir -p $(GEN)
	@echo "  PROTOC  $<"
	$(Q)protoc-c --c_out=$(GEN) -I/usr/share/grpc-proto $<

$(GEN)/grpc/reflection/v1/reflection.pb-c.c $(GEN)/grpc/reflection/v1/reflection.pb-c.h &: $(REFLECT_PROTO)
	@mkdir -p $(GEN)
	@echo "  PROTOC  $<"
	$(Q)protoc-c --c_out=$(GEN) -I/usr/share/grpc-proto $<

$(GEN)/tests/peers/echo.pb-c.c $(GEN)/tests/peers/echo.pb-c.h &: tests/peers/echo.proto
	@mkdir -p $(GEN)
	@echo "  PROTOC  $<"
	$(Q)protoc-c --c_out=$(GEN) -I. $<

$(GEN)/%.pb-c.o: $(GEN)/%.pb-c.c
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(PKG_CFLAGS) -c -o $@ $<

# Health checker and proxy objects use the generated health messages.
$(HC_SRCS:%.c=$(BUILD)/%.o) $(PROXY_SRCS:%.c=$(BUILD)/%.o): $(GEN)/grpc/health/v1/health.pb-c.h
$(PROXY_SRCS:%.c=$(BUILD)/%.o): $(GEN)/grpc/reflection/v1/reflection.pb-c.h

# Every peer/support object needs the generated headers first.
$(PEER_LIB_SRCS:%.c=$(BUILD)/%.o) $(SUPPORT_OBJS) $(BUILD)/tests/peers/backend.o \
$(BUILD)/tests/peers/client_main.o $(INTEG_SRCS:tests/integration/%.c=$(BUILD)/tests/integration/%.o): \
	$(GEN)/tests/peers/echo.pb-c.h $(GEN)/grpc/health/v1/health.pb-c.h

$(BUILD)/tests/peers/sy-backend: $(BUILD)/tests/peers/backend.o $(PEER_LIB_OBJS)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $^ $(G_LIBS) $(PKG_LIBS) -lpthread

$(BUILD)/tests/peers/sy-client: $(BUILD)/tests/peers/client_main.o $(PEER_LIB_OBJS)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $^ $(G_LIBS) $(PKG_LIBS) -lpthread

$(CLI_OBJS): PKG_CFLAGS += $(CLI_CFLAGS)
$(CLI_OBJS): $(GEN)/grpc/health/v1/health.pb-c.h
$(HEALTH_BIN): $(CLI_OBJS) $(HEALTH_PB_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS_ALL) $(SHIP_LDFLAGS) -o $@ $^ $(CLI_LIBS) -lm -lpthread

# Unit tests link only their own module's objects.
$(BUILD)/tests/unit/test_conf: $(BUILD)/tests/unit/test_conf.o $(CONF_OBJS)
$(BUILD)/tests/unit/test_docs: $(BUILD)/tests/unit/test_docs.o $(CONF_OBJS)
$(BUILD)/tests/unit/test_balancer: $(BUILD)/tests/unit/test_balancer.o $(BAL_OBJS)
$(BUILD)/tests/unit/test_dns: $(BUILD)/tests/unit/test_dns.o $(BUILD)/proxy/dns.o $(BUILD)/core/log.o \
    $(BUILD)/core/utf8.o $(BAL_OBJS) $(CONF_OBJS)
$(BUILD)/tests/unit/test_auth: $(BUILD)/tests/unit/test_auth.o $(BUILD)/proxy/auth.o $(CONF_OBJS)
$(BUILD)/tests/unit/test_conf_admin: $(BUILD)/tests/unit/test_conf_admin.o $(CONF_OBJS)
$(BUILD)/tests/unit/test_conf_obs: $(BUILD)/tests/unit/test_conf_obs.o $(CONF_OBJS) $(BUILD)/core/utf8.o
$(BUILD)/tests/unit/test_drain: $(BUILD)/tests/unit/test_drain.o $(BAL_OBJS) $(CONF_OBJS)
$(BUILD)/tests/unit/test_grpc: $(BUILD)/tests/unit/test_grpc.o $(BUILD)/core/grpc.o
$(BUILD)/tests/unit/test_health: $(BUILD)/tests/unit/test_health.o $(HC_OBJS) $(BAL_OBJS) $(CONF_OBJS) \
    $(BUILD)/core/tls.o $(BUILD)/core/grpc.o
$(BUILD)/tests/unit/test_flow: $(BUILD)/tests/unit/test_flow.o $(BUILD)/proxy/flow.o
$(BUILD)/tests/unit/test_retry: $(BUILD)/tests/unit/test_retry.o $(BUILD)/proxy/retry.o
$(BUILD)/tests/unit/test_h2mem: $(BUILD)/tests/unit/test_h2mem.o $(BUILD)/proxy/h2mem.o
$(BUILD)/tests/unit/test_outlier: $(BUILD)/tests/unit/test_outlier.o $(BAL_OBJS) $(CONF_OBJS)
$(BUILD)/tests/unit/test_transcode: $(BUILD)/tests/unit/test_transcode.o \
    $(BUILD)/proxy/filters/transcode_path.o
$(BUILD)/tests/unit/test_grpc_web: $(BUILD)/tests/unit/test_grpc_web.o \
    $(BUILD)/proxy/filters/grpc_web_codec.o
# The call spine without the frontend, the worker or sockets.
SPINE_OBJS := $(addprefix $(BUILD)/proxy/,call.o attempt.o pool.o be.o conn.o flow.o h2mem.o head.o \
    retry.o) \
    $(addprefix $(BUILD)/core/,log.o grpc.o tls.o utf8.o)
$(BUILD)/tests/unit/test_call: $(BUILD)/tests/unit/test_call.o $(SPINE_OBJS) $(BAL_OBJS) $(CONF_OBJS)
$(BUILD)/tests/unit/test_%: $(BUILD)/tests/unit/test_%.o
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $^ $(T_LIBS) $(PKG_LIBS) -lpthread

$(BUILD)/tests/integration/test_%: $(BUILD)/tests/integration/test_%.o $(SUPPORT_OBJS) $(PEER_LIB_OBJS)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $^ $(T_LIBS) $(G_LIBS) $(PKG_LIBS) -lpthread

# ---- test: sanitizers on, everything under build/asan ----
ASAN_BUILD := build/asan
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# The optimised build too: tests that measure memory run it, since under ASan
# they would measure ASan's allocator.
test: deps
	$(Q)$(MAKE) --no-print-directory $(BIN)
	$(Q)$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) SAN="$(SAN_FLAGS)" OPT=-O1 \
	    SY_BIN_RELEASE=$(abspath $(BIN)) run-tests

# Peers are built without sanitizers: they are the gRPC C core, not our code.
# The fuzz harnesses are built by clang under build/fuzz (see "fuzz" below) and
# run for FUZZ_RUNS inputs each after the Criterion binaries.
run-tests: $(BIN) $(HEALTH_BIN) $(UNIT_BINS) $(INTEG_BINS)
	$(Q)$(MAKE) --no-print-directory BUILD=build/peers SAN= OPT=-O2 peers
	$(Q)$(MAKE) --no-print-directory otel-peer
	$(Q)$(MAKE) --no-print-directory rest-peer
	$(Q)$(MAKE) --no-print-directory fuzz-bins
	$(Q)$(MAKE) --no-print-directory web-deps
	$(Q)SY_OTEL_PEER=$(abspath $(OTEL_PEER)) SY_BIN=$(abspath $(BIN)) SY_BIN_RELEASE=$(SY_BIN_RELEASE) SY_HEALTH_BIN=$(abspath $(HEALTH_BIN)) SY_BACKEND=$(abspath build/peers/tests/peers/sy-backend) \
	    SY_REST_DIR=$(abspath $(REST_DIR)) SY_WEB=$(abspath $(WEB)) \
	    SY_TOP=$(CURDIR) SY_FUZZ_BINS="$(abspath $(FUZZ_BINS))" SY_FUZZ_RUNS=$(FUZZ_RUNS) \
	    bash scripts/run-tests.sh $(UNIT_BINS) $(INTEG_BINS)

peers: $(PEER_BINS)

# The OpenTelemetry-instrumented test backend (tests/peers/otel/backend.js):
# its npm packages are installed at test time under build/, from the
# committed package.json and package-lock.json, never committed themselves.
OTEL_PEER := build/otel-peer
$(OTEL_PEER)/node_modules/.package-lock.json: tests/peers/otel/package.json tests/peers/otel/package-lock.json
	@mkdir -p $(OTEL_PEER)
	@echo "  NPM     $(OTEL_PEER)"
	$(Q)cp tests/peers/otel/package.json tests/peers/otel/package-lock.json $(OTEL_PEER)/
	$(Q)cd $(OTEL_PEER) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null

.PHONY: otel-peer
otel-peer: $(OTEL_PEER)/node_modules/.package-lock.json

# REST transcoding tests: the grpc-js backend (tests/rest/backend.js) with the
# npm packages its committed lock file pins, installed under build/rest, and
# protoc descriptor sets of its protos (google/api/*.proto from Debian's
# golang-github-gogo-googleapis-dev, google/protobuf/*.proto from libprotobuf-dev).
REST_DIR    := build/rest
GOOGLEAPIS  := /usr/share/gocode/src/github.com/gogo/googleapis
REST_PROTOC := protoc --include_imports -Itests/rest -I$(GOOGLEAPIS) -I/usr/include
.PHONY: rest-peer
rest-peer: $(REST_DIR)/user.pb $(REST_DIR)/user_extra.pb $(REST_DIR)/node_modules/.stamp

$(REST_DIR)/user.pb: tests/rest/user.proto
$(REST_DIR)/user_extra.pb: tests/rest/user.proto tests/rest/extra.proto
$(REST_DIR)/user.pb $(REST_DIR)/user_extra.pb:
	@mkdir -p $(REST_DIR)
	@echo "  PROTOC  $@"
	$(Q)$(REST_PROTOC) -o $@ $(notdir $(filter %.proto,$^))

$(REST_DIR)/node_modules/.stamp: tests/rest/package.json tests/rest/package-lock.json
	@mkdir -p $(REST_DIR)
	@echo "  NPM     $(REST_DIR)"
	$(Q)cp tests/rest/package.json tests/rest/package-lock.json $(REST_DIR)/
	$(Q)cd $(REST_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
	$(Q)touch $@

# ---- web-deps: what tests/integration/test_web.c runs besides C ----
# The npm packages pinned by tests/web/package-lock.json (Connect's gRPC-Web
# client, playwright-core for Debian's chromium), installed under build/web,
# never committed; and a descriptor set of echo.proto for the Node.js client.
WEB := build/web
.PHONY: web-deps
web-deps: $(WEB)/node_modules/.installed $(WEB)/echo.pb

$(WEB)/node_modules/.installed: tests/web/package.json tests/web/package-lock.json
	@mkdir -p $(WEB)
	@echo "  NPM     $(WEB)"
	$(Q)cp tests/web/package.json tests/web/package-lock.json $(WEB)/
	$(Q)cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	$(Q)touch $@

$(WEB)/echo.pb: tests/peers/echo.proto
	@mkdir -p $(WEB)
	@echo "  PROTOC  $<"
	$(Q)protoc-c -I. --descriptor_set_out=$@ $<

unit: deps
	$(Q)$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) SAN="$(SAN_FLAGS)" OPT=-O1 $(UNIT_BINS)
	$(Q)bash scripts/run-tests.sh $(UNIT_BINS)

asan: test

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(BIN) -c $(CONF)

# The binaries, the man pages, the systemd unit (with this PREFIX's paths),
# and the example configuration and logrotate snippet for the administrator
# to copy to /etc. DESTDIR stages the whole tree for a package.
MANPAGES    := docs/man/switchyard.8 docs/man/switchyard.ini.5 docs/man/switchyard-health.1
UNITDIR     ?= $(PREFIX)/lib/systemd/system
EXAMPLEDIR  ?= $(PREFIX)/share/doc/switchyard/examples

install: $(BIN) $(REST_MOD) $(HEALTH_BIN) $(MANPAGES) docker/systemd/switchyard.service
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/switchyard $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(EXAMPLEDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/switchyard
	install -m 0644 $(REST_MOD) $(DESTDIR)$(PREFIX)/lib/switchyard/switchyard-rest.so
	install -m 0755 $(HEALTH_BIN) $(DESTDIR)$(PREFIX)/bin/switchyard-health
	for m in $(MANPAGES); do \
	    s=$${m##*.}; install -d $(DESTDIR)$(PREFIX)/share/man/man$$s; \
	    install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; \
	done
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' docker/systemd/switchyard.service \
	    > $(DESTDIR)$(UNITDIR)/switchyard.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/switchyard.service
	install -m 0644 conf/switchyard.ini $(DESTDIR)$(EXAMPLEDIR)/switchyard.ini
	install -m 0644 docker/logrotate/switchyard $(DESTDIR)$(EXAMPLEDIR)/logrotate-switchyard

clean:
	rm -rf build

# ---- fuzz: libFuzzer harnesses (tests/fuzz/fuzz_NAME.c), clang with ASan+UBSan ----
# A harness is one file tests/fuzz/fuzz_NAME.c (LLVMFuzzerTestOneInput, and
# LLVMFuzzerInitialize if it needs set-up) with seeds in tests/fuzz/corpus/NAME/,
# plus one line below naming the objects it links. Objects are built again by
# clang with coverage under build/fuzz. `make test` runs each harness for
# FUZZ_RUNS inputs (fixed seed: the same inputs every time); `make fuzz` runs
# each for FUZZ_SECONDS with a random seed, keeping new inputs in
# build/fuzz/corpus/NAME and crashes in build/fuzz/artifacts/NAME.
FUZZ_CC      ?= clang-14
FUZZ_CXX     ?= clang++-14
FUZZ_BUILD   := build/fuzz
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
                -fno-sanitize-recover=undefined
FUZZ_RUNS    ?= 20000
FUZZ_SECONDS ?= 60
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/tests/fuzz/%)

# One line per harness: the objects it links besides its own.
$(BUILD)/tests/fuzz/fuzz_conf: $(CONF_OBJS)
$(BUILD)/tests/fuzz/fuzz_health: $(BUILD)/health/codec.o $(BUILD)/core/grpc.o $(HEALTH_PB_OBJ)
$(BUILD)/tests/fuzz/fuzz_grpc_timeout: $(BUILD)/core/grpc.o
$(BUILD)/tests/fuzz/fuzz_grpc_path: $(BUILD)/core/grpc.o
$(BUILD)/tests/fuzz/fuzz_auth: $(BUILD)/proxy/auth.o $(CONF_OBJS) $(BUILD)/core/grpc.o
$(BUILD)/tests/fuzz/fuzz_rest_path: $(BUILD)/proxy/filters/transcode_path.o
# The JSON intake links the C++ converter: linked by the C++ driver. It reads
# the REST tests' descriptor set (make rest-peer builds it).
REST_FUZZ_OBJS := $(addprefix $(BUILD)/proxy/filters/,transcode_pb.o transcode_table.o transcode_path.o)
$(BUILD)/tests/fuzz/fuzz_rest_json: $(BUILD)/tests/fuzz/fuzz_rest_json.o $(REST_FUZZ_OBJS)
	@echo "  LD      $@"
	$(Q)$(CXX) $(CXXFLAGS_ALL) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) $(X_LIBS) -lpthread
$(BUILD)/tests/fuzz/fuzz_grpc_web: $(BUILD)/proxy/filters/grpc_web_codec.o
$(BUILD)/tests/fuzz/fuzz_h1: $(BUILD)/proxy/h1.o $(SPINE_OBJS) $(BAL_OBJS) $(CONF_OBJS)
$(BUILD)/tests/fuzz/fuzz_be: $(addprefix $(BUILD)/proxy/,be.o conn.o h2mem.o head.o) \
    $(addprefix $(BUILD)/core/,log.o tls.o utf8.o) $(CONF_OBJS)
# A whole runtime (tests/fuzz/runtime.c: main.c's set-up, one worker, the
# admin): every object the proxy links but main.o, with the transcoder linked
# in rather than loaded, by the C++ driver.
$(BUILD)/tests/fuzz/fuzz_fe $(BUILD)/tests/fuzz/fuzz_admin: $(BUILD)/tests/fuzz/runtime.o \
    $(filter-out $(REST_MOD_OBJ),$(LIB_OBJS)) $(REST_PB_OBJS)
	@echo "  LD      $@"
	$(Q)$(CXX) $(CXXFLAGS_ALL) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) $(X_LIBS) -lpthread
$(BUILD)/tests/fuzz/fuzz_fe: $(BUILD)/tests/fuzz/fuzz_fe.o
$(BUILD)/tests/fuzz/fuzz_admin: $(BUILD)/tests/fuzz/fuzz_admin.o

$(BUILD)/tests/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) -lpthread

.PHONY: fuzz fuzz-bins fuzz-bins-here
fuzz-bins:
	$(Q)$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) CXX=$(FUZZ_CXX) \
	    SAN="$(FUZZ_SAN)" OPT=-O1 fuzz-bins-here

fuzz-bins-here: $(FUZZ_BINS)

fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-bins $(REST_DIR)/user.pb
	$(Q)bash tests/fuzz/run.sh --seconds $(FUZZ_SECONDS) $(FUZZ_BINS)

FMT_DIRS := core proxy balancer health conf tests
format:
	clang-format -i $$(find $(FMT_DIRS) -name '*.[ch]' -o -name '*.cc')

format-check:
	clang-format --dry-run --Werror $$(find $(FMT_DIRS) -name '*.[ch]' -o -name '*.cc')

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- bench: switchyard against direct calls, nginx and HAProxy (bench/run.sh) ----
# Installs nginx and HAProxy (deps.sh --bench), builds the optimised switchyard and
# the bench's own echo backend and client, then runs. BENCH_* variables: bench/run.sh.
BENCH_BINS := $(BUILD)/bench/sy-echo $(BUILD)/bench/sy-benchclient
BENCH_PKGS := libevent libevent_pthreads libnghttp2

.PHONY: bench bench-bins
bench:
	$(Q)bash scripts/deps.sh --bench
	$(Q)$(MAKE) --no-print-directory all bench-bins
	$(Q)BUILD=$(abspath $(BUILD)) bash bench/run.sh

bench-bins: $(BENCH_BINS) $(BUILD)/bench/echo_rest.pb

# The REST case's rule (google.api.http on sy-echo's Unary), as a descriptor set.
$(BUILD)/bench/echo_rest.pb: bench/peers/echo_rest.proto
	@mkdir -p $(dir $@)
	@echo "  PROTOC  $@"
	$(Q)protoc --include_imports -Ibench/peers -I$(GOOGLEAPIS) -I/usr/include -o $@ echo_rest.proto

$(BUILD)/bench/sy-echo: bench/echo_server.c
$(BUILD)/bench/sy-benchclient: bench/bench_client.c
$(BENCH_BINS):
	@mkdir -p $(dir $@)
	@echo "  CCLD    $@"
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(shell pkg-config --cflags $(BENCH_PKGS)) -o $@ $< \
	    $(shell pkg-config --libs $(BENCH_PKGS)) -lpthread

# ---- demo: three echo backends behind switchyard, one turning NOT_SERVING and back ----
# Installs deps, builds switchyard and the test peers, runs scripts/demo.sh (about
# 15 s; DEMO_KEEP=1 keeps it running until Ctrl-C).
.PHONY: demo demo-rest
demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory BUILD=build/peers SAN= OPT=-O2 peers
	$(Q)SY_BIN=$(BIN) SY_HEALTH_BIN=$(HEALTH_BIN) SY_BACKEND=build/peers/tests/peers/sy-backend \
	    SY_CLIENT=build/peers/tests/peers/sy-client bash scripts/demo.sh

# ---- demo-rest: REST/JSON calls through switchyard to a gRPC service (scripts/demo-rest.sh) ----
demo-rest: deps
	$(Q)$(MAKE) --no-print-directory all rest-peer
	$(Q)SY_BIN=$(BIN) SY_REST_DIR=$(REST_DIR) bash scripts/demo-rest.sh
