# The two entry points of the README (demo, test) and the extra CI stages. Every target installs
# what is missing first (Debian, as root or with sudo).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
FUZZ_SECONDS ?= 30

.PHONY: deps build demo test test-sanitize fuzz bench clean

deps:
	@bash .ci/install-deps

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

# The main job: every lesson's experiment, a verdict table and the HTML report.
demo: build
	./$(BUILD)/hldlab tour --report $(BUILD)/report.html

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-sanitize: deps
	cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHLDLAB_SANITIZE=ON -DHLDLAB_BUILD_BENCH=OFF
	cmake --build build-sanitize -j $(JOBS)
	ctest --test-dir build-sanitize --output-on-failure -j $(JOBS)

# libFuzzer targets (clang), each run for FUZZ_SECONDS on a copy of its seed corpus.
fuzz: deps
	cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
	  -DHLDLAB_FUZZ=ON -DHLDLAB_BUILD_TESTS=OFF -DHLDLAB_BUILD_BENCH=OFF
	cmake --build build-fuzz -j $(JOBS) --target fuzz_params fuzz_lua
	@for t in params lua; do \
	  rm -rf build-fuzz/corpus-$$t && cp -r fuzz/corpus/$$t build-fuzz/corpus-$$t && \
	  ./build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 build-fuzz/corpus-$$t || exit 1; \
	done

bench: build
	@for b in $(BUILD)/bench_*; do echo "== $$b"; $$b || exit 1; done

clean:
	rm -rf $(BUILD) build-sanitize build-fuzz
