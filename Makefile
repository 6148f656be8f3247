# ustcp — build, test and install.
#
#   make            build everything into build/
#   make check      run every suite; ends with "N passed, N failed"
#   make SAN=1 …    the same with AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz       build and briefly run the libFuzzer harnesses (clang)
#   make demo       show ustcp at work in throw-away network namespaces
#   make deps       install the Debian packages the build and tests need
#   make install    PREFIX=/usr/local DESTDIR=

comma   := ,
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build

CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter -fno-strict-aliasing -D_GNU_SOURCE -Istack
LDLIBS  ?=

ifeq ($(WERROR),1)
CFLAGS  += -Werror
endif

# The sanitizer build is also the debug build: TCP state changes outside the
# state diagram abort (UST_CHECK_STATES, stack/tcp_state.c), as in the fuzzers.
ifeq ($(SAN),1)
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
           -DUST_CHECK_STATES
LDFLAGS += -fsanitize=address,undefined
endif

# Everything in stack/ is one static library: the protocol code and the link
# layer. Tools, tests and (later) the shim link against it.
STACK_SRC := $(wildcard stack/*.c)
STACK_OBJ := $(STACK_SRC:%.c=$(BUILD)/%.o)
STACK_LIB := $(BUILD)/libustcp-stack.a

# The preload library: shim/ (the overridden calls, on the program's
# threads) and stackthread/ (the stack thread: start-up, relay, ports,
# control socket, keeper) on top of the stack, compiled on their own into
# $(BUILD)/lib/. Only the overridden calls are exported; everything else
# stays inside. Under SAN=1 it gets UBSan only: the programs it is
# preloaded into are not built with ASan, and ASan preloaded into them does
# not work reliably (curl deadlocks in setlocale with libasan alone).
SHIM_SRC    := $(wildcard shim/*.c) $(wildcard stackthread/*.c)
SHIM_OBJ    := $(SHIM_SRC:%.c=$(BUILD)/lib/%.o) $(STACK_SRC:%.c=$(BUILD)/lib/%.o)
SHIM_LIB    := $(BUILD)/libustcp.so
SHIM_CFLAGS := $(subst -fsanitize=address$(comma)undefined,-fsanitize=undefined,$(CFLAGS)) -fPIC
SHIM_LDFLAGS := $(subst -fsanitize=address$(comma)undefined,-fsanitize=undefined,$(LDFLAGS))

# Stand-alone tools: one C file each (tools/ustcp-impair.c -> build/ustcp-impair).
TOOL_SRC  := $(wildcard tools/*.c)
TOOLS     := $(TOOL_SRC:tools/%.c=$(BUILD)/%)
SCRIPTS   := $(BUILD)/ustcp-netns

# Test programs.
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HOST_BIN  := $(BUILD)/tests/ustcp-host
# Small programs the Bats suites run (tests/progs/X.c -> build/tests/X).
PROG_SRC  := $(wildcard tests/progs/*.c)
PROG_BIN  := $(PROG_SRC:tests/progs/%.c=$(BUILD)/tests/%)
SEG_BIN   := $(BUILD)/tests/seg-run
BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)

ALL := $(STACK_LIB) $(SHIM_LIB) $(TOOLS) $(SCRIPTS) $(UNIT_BIN) $(HOST_BIN) $(PROG_BIN) \
       $(if $(wildcard tests/seg/driver.c),$(SEG_BIN)) $(BENCH_BIN)

.PHONY: all check check-unit check-bats check-twins fuzz bench demo deps install clean
all: $(ALL)

$(BUILD)/lib/shim/%.o: shim/%.c $(wildcard shim/*.h) stackthread/stackthread.h $(wildcard stack/*.h) | $(BUILD)/lib/shim
	$(CC) $(SHIM_CFLAGS) -fvisibility=hidden -c -o $@ $<

$(BUILD)/lib/stackthread/%.o: stackthread/%.c $(wildcard stackthread/*.h) $(wildcard stack/*.h) | $(BUILD)/lib/stackthread
	$(CC) $(SHIM_CFLAGS) -fvisibility=hidden -c -o $@ $<

$(BUILD)/lib/stack/%.o: stack/%.c $(wildcard stack/*.h) | $(BUILD)/lib/stack
	$(CC) $(SHIM_CFLAGS) -fvisibility=hidden -c -o $@ $<

$(BUILD)/%.o: %.c $(wildcard stack/*.h) | $(BUILD)/stack $(BUILD)/tests
	$(CC) $(CFLAGS) -c -o $@ $<

$(SHIM_LIB): $(SHIM_OBJ)
	$(CC) $(SHIM_CFLAGS) $(SHIM_LDFLAGS) -shared -o $@ $(SHIM_OBJ) -Wl,-z,defs -lev -ldl -lpthread

$(BUILD)/lib/shim $(BUILD)/lib/stackthread $(BUILD)/lib/stack $(BUILD)/stack $(BUILD)/tests $(BUILD)/tools $(BUILD)/fuzz $(BUILD)/bench:
	mkdir -p $@

$(STACK_LIB): $(STACK_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/%: tools/%.c $(STACK_LIB) | $(BUILD)/tools
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STACK_LIB) $(LDLIBS) -lm

# The launcher drops capabilities with libcap-ng and finds the installed
# library under $(PREFIX)/lib/ustcp when none lies next to it.
$(BUILD)/ustcp: tools/ustcp.c $(STACK_LIB) | $(BUILD)/tools
	$(CC) $(CFLAGS) -DUSTCP_LIBDIR='"$(PREFIX)/lib/ustcp"' $(LDFLAGS) -o $@ $< $(STACK_LIB) $(LDLIBS) -lcap-ng

$(BUILD)/ustcp-netns: tools/ustcp-netns | $(BUILD)/tools
	install -m 755 $< $@

# The control-block invariants, checked by the segment driver after every
# script line, by the TCP fuzzer after every operation and by the table
# tests below (defined before the first rule that names it: make expands a
# rule's prerequisites as it reads the rule).
TCP_INV := tests/common/tcp_invariants.c tests/common/tcp_invariants.h

# The engine's tables at scale, and its connections to itself, under the
# invariant checker.
$(BUILD)/tests/test_tcp_table $(BUILD)/tests/test_tcp_loop: $(BUILD)/tests/test_%: tests/unit/test_%.c $(wildcard tests/unit/*.h) $(TCP_INV) $(STACK_LIB) | $(BUILD)/tests
	$(CC) $(CFLAGS) -Itests/common $(LDFLAGS) -o $@ $< tests/common/tcp_invariants.c $(STACK_LIB) $(LDLIBS) -lcmocka

$(BUILD)/tests/test_%: tests/unit/test_%.c $(wildcard tests/unit/*.h) $(STACK_LIB) | $(BUILD)/tests
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STACK_LIB) $(LDLIBS) -lcmocka

# The relay's unit test drives stackthread/'s relay in one process: those
# objects (and the shim's libc table and socket slots) built as the tests
# are, sanitizers included, linked in beside the stack.
RELAY_TEST_OBJ := $(addprefix $(BUILD)/unit/,stackthread/relay.o stackthread/io.o stackthread/ops.o stackthread/loopback.o stackthread/ports.o \
                  stackthread/addrshare.o stackthread/fds.o stackthread/steer.o shim/real.o shim/fdtab.o)
$(BUILD)/unit/%.o: %.c $(wildcard stackthread/*.h) $(wildcard shim/*.h) $(wildcard stack/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_io: tests/unit/test_io.c $(BUILD)/unit/stackthread/io.o | $(BUILD)/tests
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/unit/stackthread/io.o $(LDLIBS) -lcmocka -lev

$(BUILD)/tests/test_relay: tests/unit/test_relay.c $(RELAY_TEST_OBJ) $(STACK_LIB) | $(BUILD)/tests
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(RELAY_TEST_OBJ) $(STACK_LIB) $(LDLIBS) -lcmocka -lev -ldl -lpthread

$(SEG_BIN): tests/seg/driver.c $(TCP_INV) $(STACK_LIB) | $(BUILD)/tests
	$(CC) $(CFLAGS) -Itests/common $(LDFLAGS) -o $@ $< tests/common/tcp_invariants.c \
	    $(STACK_LIB) $(LDLIBS)

$(BUILD)/bench/%: tests/bench/%.c $(STACK_LIB) | $(BUILD)/bench
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STACK_LIB) $(LDLIBS) -lev -lm

# Benchmarks report figures (ratios against the kernel where there is one);
# they never fail a build for being slow.
bench: all
	tests/bench/run $(BUILD)

# They stand for ordinary programs the library is preloaded into: no
# sanitizer (an ASan program refuses a preload that comes before ASan).
PROG_CFLAGS := $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS))
$(BUILD)/tests/%: tests/progs/%.c | $(BUILD)/tests
	$(CC) $(PROG_CFLAGS) -o $@ $<

$(HOST_BIN): tests/host/ustcp-host.c $(STACK_LIB) | $(BUILD)/tests
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STACK_LIB) $(LDLIBS) -lev

# The test runner prints one "N passed, N failed" line over all suites and
# fails if anything failed.
# check and demo work on a fresh machine: they install what is missing first.
check: deps
	$(MAKE) all
	USTCP_SAN=$(SAN) tests/run $(BUILD)

check-unit: all
	tests/run $(BUILD) unit

check-bats: all
	USTCP_SAN=$(SAN) tests/run $(BUILD) bats

# The Bats tests' kernel twins alone: each [ustcp] test's expectations,
# checked against Linux's own TCP. Run them when a test is added or changed
# (make check leaves them out: tests/run).
check-twins: deps
	$(MAKE) all
	USTCP_TWINS=only tests/run $(BUILD) bats

FUZZ_SECONDS ?= 30
FUZZ_JOBS ?= 2
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
# The stack is compiled once for all harnesses (instrumented for coverage,
# not linked with libFuzzer's main), each harness then linked with it.
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -DUST_CHECK_STATES -Istack -Itests/common \
    -Wno-gnu-variable-sized-type-not-at-end
FUZZ_OBJ := $(STACK_SRC:stack/%.c=$(BUILD)/fuzz/obj/%.o)
$(BUILD)/fuzz/obj/%.o: stack/%.c $(wildcard stack/*.h) | $(BUILD)/fuzz
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<
$(BUILD)/fuzz/obj/tcp_invariants.o: $(TCP_INV) | $(BUILD)/fuzz
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<
$(BUILD)/fuzz/fuzz_tcp: $(BUILD)/fuzz/obj/tcp_invariants.o
.SECONDARY: $(FUZZ_OBJ) $(BUILD)/fuzz/obj/tcp_invariants.o
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ) | $(BUILD)/fuzz
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(filter %.o,$^) -lev
fuzz: $(FUZZ_BIN)
	tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_BIN)

demo: deps
	$(MAKE) all
	tests/demo $(BUILD)

deps:
	tools/install-deps

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/ustcp $(BUILD)/ustcp-stat $(BUILD)/ustcp-impair $(BUILD)/ustcp-netns \
	    $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/lib/ustcp
	install -m 644 $(BUILD)/libustcp.so $(DESTDIR)$(PREFIX)/lib/ustcp/
	set -e; for m in $(wildcard man/*.[1-8]); do \
	    install -d $(DESTDIR)$(PREFIX)/share/man/man$${m##*.}; \
	    install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$${m##*.}/; done

clean:
	rm -rf $(BUILD)
