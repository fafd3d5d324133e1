#!/usr/bin/env bash
# Side by side with libCacheSim's cachesim (https://github.com/1a1a11a/libCacheSim) on the
# identical trace: Zipf 1.0 over 10^6 objects, 10^7 requests, size 1, written by hldlab's own
# generator in libCacheSim's oracleGeneral format; LRU, FIFO, LFU and W-TinyLFU (cachesim:
# wtinyLFU) at 1 % and 10 % of the objects. Prints both wall times, their ratio and both miss
# ratios (which must agree: the same policy on the same trace); last, every configuration at
# once, on 2 threads each (one hldlab experiment of 8 systems, --jobs 2; one cachesim run of
# every policy and size, --num-thread 2). Nothing is asserted.
#
#   bash bench/compare_cachesim.sh [BUILD_DIR]      (as root the first time: it apt-installs
#                                                    libCacheSim's build dependencies)
# Environment: REQUESTS (default 10000000), OBJECTS (1000000), POLICIES ("lru fifo lfu
# wtinylfu"), SIZES ("0.01 0.1"), LIBCACHESIM_DIR (an existing checkout to build instead of
# cloning).
set -euo pipefail
BUILD=$(realpath "${1:-build}")
WORK="$BUILD/cachesim_compare"
REQUESTS=${REQUESTS:-10000000}
OBJECTS=${OBJECTS:-1000000}
POLICIES=${POLICIES:-"lru fifo lfu wtinylfu"}
SIZES=${SIZES:-"0.01 0.1"}
mkdir -p "$WORK"

# 1. libCacheSim's cachesim, built from its public repository.
if [ ! -x "$WORK/libCacheSim/_build/bin/cachesim" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y --no-install-recommends git cmake g++ pkg-config bc libglib2.0-dev libzstd-dev >/dev/null
  fi
  if [ -n "${LIBCACHESIM_DIR:-}" ]; then
    rm -rf "$WORK/libCacheSim" && cp -r "$LIBCACHESIM_DIR" "$WORK/libCacheSim"
  elif [ ! -d "$WORK/libCacheSim" ]; then
    git clone --depth 1 https://github.com/1a1a11a/libCacheSim "$WORK/libCacheSim"
  fi
  cmake -S "$WORK/libCacheSim" -B "$WORK/libCacheSim/_build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$WORK/libCacheSim/_build" -j"$(nproc)" --target cachesim >/dev/null
fi
CACHESIM="$WORK/libCacheSim/_build/bin/cachesim"

# 2. The trace, from hldlab's Zipf generator (rejection-inversion), seed 1.
cmake --build "$BUILD" --target hldlab hldlab_zipf_trace caching >/dev/null
TRACE="$WORK/zipf.oracleGeneral"
[ -f "$TRACE" ] || "$BUILD/hldlab_zipf_trace" "$TRACE" "$REQUESTS" "$OBJECTS" 1.0 1

seconds() { local start end; start=$(date +%s.%N); "$@" >"$WORK/last.out" 2>&1; end=$(date +%s.%N);
            echo "$end - $start" | bc -l; }

cd "$WORK"  # cachesim writes its result file into the current directory
printf '%-10s %6s %12s %12s %7s %14s %14s\n' policy size "hldlab s" "cachesim s" ratio "hldlab miss" "cachesim miss"
for policy in $POLICIES; do
  for share in $SIZES; do
    capacity=$(printf '%.0f' "$(echo "$OBJECTS * $share" | bc -l)")
    # hldlab: one caching system replaying the trace; requests spaced 1 ms apart and a 10 us
    # database, so that every miss is filled before the next request (cachesim is instant).
    cat >"$WORK/run.lua" <<LUA
local lab = require "hldlab"
local exp = lab.experiment{ name = "compare", duration = "$((REQUESTS / 1000 + 1))s", max_requests = 1e9 }
exp:workload{ arrivals = lab.trace{ file = "zipf.oracleGeneral", format = "oracleGeneral", rps = 1000 } }
exp:add{ lesson = "caching", variant = "$policy", params = { capacity = $capacity, cache_latency = "1us",
         db_median = "10us", db_p99 = "10us" } }
local r = exp:run()
print(string.format("miss %.6f", 1 - r.$policy.hit_ratio))
LUA
    t_hldlab=$(seconds "$BUILD/hldlab" run "$WORK/run.lua" --data "$WORK" --jobs 1)
    miss_hldlab=$(awk '/^miss/ {print $2}' "$WORK/last.out")
    peer=$policy; [ "$policy" = wtinylfu ] && peer=wtinyLFU
    t_peer=$(seconds "$CACHESIM" "$TRACE" oracleGeneral "$peer" "$capacity" --ignore-obj-size 1)
    miss_peer=$(grep -o 'miss ratio [0-9.]*' "$WORK/last.out" | head -1 | awk '{print $3}')
    printf '%-10s %6s %12.2f %12.2f %7.2f %14s %14s\n' "$policy" "$share" "$t_hldlab" "$t_peer" \
      "$(echo "$t_hldlab / $t_peer" | bc -l)" "$miss_hldlab" "${miss_peer:-?}"
  done
done

# All the configurations at once: one hldlab experiment with a system per (policy, size) on
# 2 worker threads, against one cachesim run of every policy and size on 2 threads.
capacities=""
systems=""
for policy in $POLICIES; do
  for share in $SIZES; do
    capacity=$(printf '%.0f' "$(echo "$OBJECTS * $share" | bc -l)")
    systems+="exp:add{ lesson = \"caching\", variant = \"$policy\", label = \"${policy}_$capacity\",
  params = { capacity = $capacity, cache_latency = \"1us\", db_median = \"10us\", db_p99 = \"10us\" } }
"
  done
done
for share in $SIZES; do
  capacities+="${capacities:+,}$(printf '%.0f' "$(echo "$OBJECTS * $share" | bc -l)")"
done
cat >"$WORK/all.lua" <<LUA
local lab = require "hldlab"
local exp = lab.experiment{ name = "compare all", duration = "$((REQUESTS / 1000 + 1))s", max_requests = 1e9 }
exp:workload{ arrivals = lab.trace{ file = "zipf.oracleGeneral", format = "oracleGeneral", rps = 1000 } }
$systems
exp:run()
LUA
peers=$(echo "$POLICIES" | sed 's/wtinylfu/wtinyLFU/; s/ /,/g')
t_hldlab=$(seconds "$BUILD/hldlab" run "$WORK/all.lua" --data "$WORK" --jobs 2)
t_peer=$(seconds "$CACHESIM" "$TRACE" oracleGeneral "$peers" "$capacities" --ignore-obj-size 1 --num-thread 2)
printf '%-10s %6s %12.2f %12.2f %7.2f   (every policy and size, 2 threads each)\n' all all \
  "$t_hldlab" "$t_peer" "$(echo "$t_hldlab / $t_peer" | bc -l)"
