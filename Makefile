# memnotify — the top-level driver.  CMake + Ninja do the building; this
# file gives the README's commands and the CI its knobs.
#
#   make run                    build and start `memnotify watch` here
#   make check                  build and run every test (installs the
#                               Debian packages the tests need, as root)
#   make check SANITIZE=address,undefined   (or SANITIZE=thread)
#   make bench                  benchmarks, as ratios against a baseline
#   make install PREFIX=/usr/local [DESTDIR=...]   (needs only the build
#                               tools; no tests or benchmarks are built;
#                               runs ldconfig as root when the library goes
#                               to a directory the loader searches)
#   make fuzz FUZZ_SECONDS=20   run each libFuzzer target (clang)
#   make check-vm               the "vm" tests in a QEMU guest (kernel 6.1:
#                               real cgroup v2, real memory failure)
#   make check-vm-full          the whole ctest suite in that guest

SANITIZE ?=
WERROR ?= $(if $(CI),ON,OFF)
PREFIX ?= /usr/local
FUZZ_SECONDS ?= 20
BUILD_TYPE ?= RelWithDebInfo
comma := ,
BUILD_DIR ?= build/$(if $(SANITIZE),$(subst $(comma),-,$(SANITIZE)),default)

CMAKE_FLAGS = -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	-DMN_SANITIZE=$(SANITIZE) -DMN_WERROR=$(WERROR) \
	-DCMAKE_INSTALL_PREFIX=$(PREFIX)

.PHONY: all build run check check-vm check-vm-full bench install fuzz deps vm-deps build-deps clean

all: build

deps:
	@tools/ensure-deps.sh --test

# Not fatal: without the packages (and not root) tests/vm/run.sh says what
# is missing and skips.
vm-deps:
	-@tools/ensure-deps.sh --vm

build-deps:
	@tools/ensure-deps.sh --build

$(BUILD_DIR)/build.ninja: CMakeLists.txt
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) >/dev/null

build: deps
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_DIR)

run: build
	$(BUILD_DIR)/bin/memnotify watch --interval 2

check: build
	@cd $(BUILD_DIR) && TSAN_OPTIONS="die_after_fork=0 $${TSAN_OPTIONS:-}" ctest --output-on-failure --timeout 300 $(CTEST_ARGS)

# The VM test bed (tests/vm/run.sh).  Exit 77 from the runner means this
# machine cannot boot the guest (it says why): reported, not a failure.
VM_RUN = tests/vm/run.sh $(BUILD_DIR) $(1) || { rc=$$?; [ $$rc -eq 77 ] && \
	echo "check-vm: SKIPPED (reason above)" || exit $$rc; }
check-vm: build vm-deps
	@$(call VM_RUN,vm)

check-vm-full: build vm-deps
	@$(call VM_RUN,check)

bench: build
	@cmake --build $(BUILD_DIR) --target bench-all
	@bench/run.sh $(BUILD_DIR)

# A build of its own, without tests and benchmarks (BUILD_TESTING=OFF):
# installing needs only what ensure-deps.sh --build brings.
INSTALL_BUILD_DIR ?= build/install
install: build-deps
	@cmake -S . -B $(INSTALL_BUILD_DIR) $(CMAKE_FLAGS) -DBUILD_TESTING=OFF >/dev/null
	@cmake --build $(INSTALL_BUILD_DIR) --target memnotify memnotify_static memnotify_cli
	@DESTDIR=$(DESTDIR) cmake --install $(INSTALL_BUILD_DIR) --prefix $(PREFIX)
	@tools/post-install-ldconfig.sh "$(PREFIX)" "$(DESTDIR)"

fuzz: deps
	@cmake -S . -B build/fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DMN_FUZZ=ON \
		-DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build/fuzz --target fuzz-all
	@tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build
