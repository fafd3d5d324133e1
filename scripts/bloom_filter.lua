-- Bloom filter: "is this username taken?" Every variant serves the same checks (reads) and
-- registrations / releases (writes) against a database that holds the truth (a unique index
-- on the names: 1 ms a statement, 8 at once).
--
-- Part 1: sign-up checks, 7000/s over a million names of which 100 000 are taken (10%).
--         db_lookup queries the database for every check (87.5% of its capacity); an exact
--         in-memory set needs no query but 16-byte slots at most 3/4 full (42 bytes a name);
--         a Bloom filter of 9.6 bits a name and 7 hashes answers "free" for certain and sends
--         the taken names plus ~1% of the free ones to the database.
-- Part 2: churn: 20 000 names taken of 40 000, 40% of the requests are writes, half of them
--         releases, for 20 s. A plain filter cannot forget: released names keep their bits
--         and its false-positive rate creeps up (a rebuild from the database resets it);
--         clearing a released name's bits erases names that share them (false negatives:
--         "free" for a taken name); a counting filter removes names for real.
-- Part 3: sizing: 50 000 names taken of 500 000, reads only. Target rates 10%, 1%, 0.1% (4.8,
--         9.6, 14.4 bits a name), and k = 2, 4, 7, 12 hashes at 9.6 bits a name: k = (m/n) ln 2
--         = 7 is the best.
--
-- Theory: a filter of m bits with k hashes holding n names answers "maybe" for an absent
-- name with probability p = (1 - e^(-kn/m))^k (the filter's `expected_fpr`). Over N checks of
-- absent names the false positives are Binomial(N, p): the claims allow 5 standard
-- deviations, sqrt(p (1 - p) / N), plus 0.1 point for the filter's own fill (k times the
-- fill's 0.1% relative deviation).
local lab = require "hldlab"

local function pct(x) return string.format("%.2f%%", 100 * x) end
local function agrees(s)
  local p, n = s.expected_fpr, s.negative_checks
  return math.abs(s.false_positive_rate - p) < 5 * math.sqrt(p * (1 - p) / n) + 0.05 * p
end

-- Part 1 ------------------------------------------------------------------------------------
local signup = lab.experiment{ name = "bloom_filter: sign-up checks, 10% of the names taken",
                               seed = 42, duration = "5s" }
signup:workload{ arrivals = lab.poisson{ rps = 7000 }, keys = lab.uniform{ n = 1000000 },
                 writes = 0.02 }
for _, v in ipairs{ "db_lookup", "exact_set", "bloom", "counting_bloom" } do
  signup:add{ lesson = "bloom_filter", variant = v }
end
local s = signup:run()
lab.report(s)
local db, exact, bloom, counting = s.db_lookup, s.exact_set, s.bloom, s.counting_bloom
for _, v in ipairs{ "exact_set", "bloom", "counting_bloom" } do
  lab.check(s[v].checks == db.checks and s[v].negative_checks == db.negative_checks,
            v .. ": the same checks as db_lookup")
  lab.check(s[v].completed == s[v].requests, v .. ": every request ends, exactly once")
end
lab.check(bloom.db_lookups == bloom.checks - bloom.negative_checks + bloom.false_positives,
          "bloom: a query for every taken name and every false positive, no other")
-- 10% of the checks are for taken names; 1% of the other 90% pass the filter: 10.9%.
lab.expect(bloom.db_lookup_share < 0.15 and db.db_lookup_share == 1
           and bloom.bytes_per_name < 1.3 and exact.bytes_per_name > 30,
           string.format("a Bloom filter sends %s of the checks to the database (db_lookup: 100%%) "
                         .. "in %.1f bytes a name (exact set: %.0f)", pct(bloom.db_lookup_share),
                         bloom.bytes_per_name, exact.bytes_per_name), { headline = true })
lab.expect(agrees(bloom), string.format("its false-positive rate %s agrees with (1 - e^(-kn/m))^k = %s",
                                        pct(bloom.false_positive_rate), pct(bloom.expected_fpr)))
lab.expect(bloom.false_negatives == 0 and counting.false_negatives == 0,
           "and it never answers \"free\" for a taken name")
lab.expect(exact.memory_bytes > 30 * bloom.memory_bytes
           and math.abs(counting.memory_bytes / bloom.memory_bytes - 4) < 0.01,
           "the exact set takes over 30x the filter's memory; 4-bit counters take 4x")
lab.expect(bloom.p50 < 10e-6 and db.p50 > 1e-3,
           "the median check takes microseconds instead of a database round trip")
lab.expect(db.check_p99 > 2 * bloom.check_p99,
           "the database at 87.5% load queues: db_lookup's check P99 is over twice the filter's")

-- Part 2 ------------------------------------------------------------------------------------
local churn = lab.experiment{ name = "bloom_filter: releases and registrations (churn)", seed = 42,
                              duration = "20s" }
churn:workload{ arrivals = lab.poisson{ rps = 5000 }, keys = lab.uniform{ n = 40000 }, writes = 0.4 }
local plain_system
for _, v in ipairs{ "bloom", "bloom_clear_on_delete", "counting_bloom" } do
  local sys = churn:add{ lesson = "bloom_filter", variant = v, params = { registered = 20000 } }
  if v == "bloom" then plain_system = sys end
end
local c = churn:run()
local rebuilt = plain_system:call("rebuild", {})
lab.report(c)
print(string.format("plain bloom after a rebuild from the database: expected false-positive rate %s, "
                    .. "stale names %d", pct(rebuilt.expected_fpr), rebuilt.stale_names))
local plain, clear, count = c.bloom, c.bloom_clear_on_delete, c.counting_bloom
lab.expect(clear.false_negatives > 100 and plain.false_negatives == 0 and count.false_negatives == 0,
           string.format("clearing a released name's bits erases others: %d checks of taken names "
                         .. "answered \"free\"", clear.false_negatives))
lab.expect(plain.expected_fpr > 3 * count.expected_fpr
           and plain.false_positive_rate > 2 * count.false_positive_rate,
           string.format("a plain filter keeps %d released names: false positives %s (counting: %s)",
                         plain.stale_names, pct(plain.false_positive_rate), pct(count.false_positive_rate)))
lab.expect(agrees(count), "the counting filter's rate agrees with the theory for the names it holds")
lab.expect(math.abs(rebuilt.expected_fpr - count.expected_fpr) < 1e-9,
           "a rebuild from the database brings the plain filter back to the counting filter's rate")

-- Part 3 ------------------------------------------------------------------------------------
local sizing = lab.experiment{ name = "bloom_filter: bits per name from the target rate, and k",
                               seed = 42, duration = "5s" }
sizing:workload{ arrivals = lab.poisson{ rps = 10000 }, keys = lab.uniform{ n = 500000 } }
for _, p in ipairs{ 0.1, 0.01, 0.001 } do
  sizing:add{ lesson = "bloom_filter", variant = "bloom", label = "target " .. pct(p),
              params = { target_fpr = p, registered = 50000 } }
end
for _, k in ipairs{ 2, 4, 7, 12 } do
  sizing:add{ lesson = "bloom_filter", variant = "bloom", label = "k = " .. k,
              params = { hashes = k, registered = 50000 } }
end
local z = sizing:run()
lab.report(z)
for i = 1, 7 do
  lab.expect(agrees(z[i]), string.format("%s: measured %s, theory %s (%.1f bits a name, k = %d)",
                                         z[i].label, pct(z[i].false_positive_rate), pct(z[i].expected_fpr),
                                         z[i].filter_cells / 50000, z[i].filter_hashes))
end
local best = z["k = 7"].false_positive_rate
lab.expect(best < z["k = 2"].false_positive_rate and best < z["k = 4"].false_positive_rate
           and best < z["k = 12"].false_positive_rate,
           "k = (m/n) ln 2 = 7 hashes give the lowest false-positive rate")
