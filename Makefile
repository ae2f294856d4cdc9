# memnotify — the top-level driver.  CMake + Ninja do the building; this
# file gives the README's commands and the CI its knobs.
#
#   make run                    build and start `memnotify watch` here
#   make check                  build and run every test (installs the
#                               Debian packages the tests need, as root)
#   make check SANITIZE=address,undefined   (or SANITIZE=thread)
#   make bench                  benchmarks, as ratios against a baseline
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make fuzz FUZZ_SECONDS=20   run each libFuzzer target (clang)

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

.PHONY: all build run check bench install fuzz deps clean

all: build

deps:
	@tools/ensure-deps.sh

$(BUILD_DIR)/build.ninja: CMakeLists.txt
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) >/dev/null

build: deps
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_DIR)

run: build
	$(BUILD_DIR)/bin/memnotify watch

check: build
	@cd $(BUILD_DIR) && TSAN_OPTIONS="die_after_fork=0 $${TSAN_OPTIONS:-}" ctest --output-on-failure --timeout 300 $(CTEST_ARGS)

bench: build
	@cmake --build $(BUILD_DIR) --target bench-all
	@bench/run.sh $(BUILD_DIR)

install: build
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD_DIR) --prefix $(PREFIX)

fuzz: deps
	@cmake -S . -B build/fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DMN_FUZZ=ON \
		-DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build/fuzz --target fuzz-all
	@tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build
