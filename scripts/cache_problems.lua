-- Cache problems: each one with the naive cache and its fixes, on identical traffic.
--
-- 1. Stampede: one hot key takes 98% of 10000 reads/s and its value costs a 50 ms query. When
--    it expires, every request in the next 50 ms misses and queries the database. Single
--    flight sends one query, XFetch recomputes early (a couple of queries), background refresh
--    reloads before expiry (none at the expiry instant). XFetch runs with beta = 3: its margin
--    is beta times the last load's time, and the database's load times vary (P99 = 3x the
--    median). A load L much slower than the last one (delta) lets E (e^(L / (beta delta)) - 1)
--    readers recompute too (E ~ Exp(1)): with beta = 1 dozens of them on about one seed in a
--    hundred, with beta = 2 on one in 600; with beta = 3 at most 17 on seeds 101-1300.
-- 2. Penetration: half the keys asked for do not exist. Naive sends every such request to the
--    database; caching "not found" stops repeated ones; a Bloom filter of the existing keys
--    also stops an attacker's random ids (injected as a fault), which null caching cannot.
-- 3. Hotspot: a celebrity key takes half of 60k reads/s; its cache node (25k lookups/s)
--    saturates and refuses. A local L1 in each of the 20 app servers absorbs it.
-- 4. Avalanche: 5000 keys warmed at once with the same 10 s TTL expire together; the database
--    takes all their misses at once. A +-30% jittered TTL spreads the expiries.
local lab = require "hldlab"

-- 1. Stampede ----------------------------------------------------------------------------------
local st = lab.experiment{ name = "cache_problems: stampede", seed = 7, duration = "30s" }
st:workload{ arrivals = lab.poisson{ rps = 10000 },
             keys = lab.hotspot{ n = 100000, hot_keys = 0.00001, hot_share = 0.98 } }
for _, v in ipairs{ "naive", "single_flight", "early_expiry", "background_refresh" } do
  local sys = st:add{ lesson = "cache_problems", variant = v,
                      params = { ttl = "5s", db_median = "50ms", db_p99 = "150ms", db_workers = 64,
                                 beta = 3 } }
  sys:call("warm", { keys = 1 })  -- the hot key is cached at time 0
end
local s = st:run()
lab.report(s)
lab.expect(s.naive.dup_loads > 500, "naive: hundreds of queries for the same key at each expiry")
lab.expect(s.single_flight.dup_loads == 0, "single flight: exactly one query per load", { headline = true })
lab.expect(s.early_expiry.dup_loads < s.naive.dup_loads / 20, "early expiry: a handful")
lab.expect(s.background_refresh.dup_loads < s.naive.dup_loads / 20, "background refresh: a handful (cold keys)")
for _, v in ipairs{ "single_flight", "early_expiry", "background_refresh" } do
  lab.expect(s[v].peak_db_qps < s.naive.peak_db_qps / 3, v .. " flattens the database peak at expiry")
end
-- Single flight's waiters find the hot key expired: ~9800/s for each reload's ~56 ms, five
-- times. Background refresh reloads it before it expires: only cold keys (~120) ever are.
lab.expect(s.background_refresh.expired_reads < s.single_flight.expired_reads / 5,
           "background refresh: nobody finds the hot key expired (single flight's waiters do)")

-- 2. Penetration -------------------------------------------------------------------------------
local function penetration(attack)
  local e = lab.experiment{ name = "cache_problems: penetration" .. (attack and " + random-id attack" or ""),
                            seed = 7, duration = "20s" }
  e:workload{ arrivals = lab.poisson{ rps = 2000 }, keys = lab.uniform{ n = 2000 } }
  local null_cache
  for _, v in ipairs{ "naive", "null_cache", "bloom_filter" } do
    local sys = e:add{ lesson = "cache_problems", variant = v, params = { existing_keys = 1000 } }
    if v == "null_cache" then null_cache = sys end
  end
  if attack then e:at("0s", function(sys) sys:inject("penetration_attack", { share = 0.5 }) end) end
  local r = e:run()
  lab.report(r)
  return r, null_cache:call("stats").cached_nulls
end
local p, nulls = penetration(false)
lab.expect(p.null_cache.absent_db < p.naive.absent_db / 10, "null caching stops repeated absent keys")
lab.expect(p.bloom_filter.absent_db < p.naive.absent_db / 20, "so does the Bloom filter")
local a, attack_nulls = penetration(true)
lab.expect(a.null_cache.absent_db > a.naive.absent_db / 2, "random ids defeat null caching")
lab.expect(attack_nulls > 10 * nulls, "and fill the cache with useless nulls (" .. attack_nulls .. " vs " .. nulls .. ")")
lab.expect(a.bloom_filter.absent_db < a.naive.absent_db / 20, "the Bloom filter still stops them")

-- 3. Hotspot -----------------------------------------------------------------------------------
local hs = lab.experiment{ name = "cache_problems: hotspot", seed = 7, duration = "5s" }
hs:workload{ arrivals = lab.poisson{ rps = 60000 },
             keys = lab.hotspot{ n = 100000, hot_keys = 0.00001, hot_share = 0.5 } }
for _, v in ipairs{ "naive", "local_l1" } do
  local sys = hs:add{ lesson = "cache_problems", variant = v,
                      params = { ttl = "60s", node_service = "40us", existing_keys = 100000 } }
  sys:call("warm", { keys = 100000 })
end
local h = hs:run()
lab.report(h)
lab.expect(h.naive.hot_node_util > 0.99, "naive: the celebrity key's node is saturated")
lab.expect(h.naive.rejected > 0, "and refuses requests")
lab.expect(h.local_l1.hot_node_util < 0.5, "local L1: the node is well below saturation")
lab.expect(h.local_l1.rejected == 0 and h.local_l1.p99 < h.naive.p99 / 10, "no refusals, P99 10x lower")

-- 4. Avalanche ---------------------------------------------------------------------------------
local av = lab.experiment{ name = "cache_problems: avalanche", seed = 7, duration = "30s" }
av:workload{ arrivals = lab.poisson{ rps = 5000 }, keys = lab.uniform{ n = 5000 } }
for _, v in ipairs{ "naive", "jittered_ttl" } do
  local sys = av:add{ lesson = "cache_problems", variant = v,
                      params = { ttl = "10s", jitter = 0.3, db_workers = 64 } }
  sys:call("warm", { keys = 5000 })
end
local v = av:run()
lab.report(v)
lab.expect(v.jittered_ttl.peak_db_qps < v.naive.peak_db_qps / 2, "jitter halves the database peak")
lab.expect(v.jittered_ttl.p99 < v.naive.p99 / 2, "and the P99")
