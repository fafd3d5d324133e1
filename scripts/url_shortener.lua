-- URL shortener: truncated hashes collide, ids from ranges do not; cached redirects; 301 vs 302.
--
-- Part 1: 19 999 creates into code spaces of M = 10^6 .. 25 000 (2 % to 80 % full at the end).
--         A truncated hash retries a taken code: insert i retries q / (1 - q) times on average
--         (q = i / M, geometric), so the collisions of n inserts are sum q / (1 - q), about the
--         birthday bound n^2 / 2M while the table is nearly empty; the variance is
--         sum q / (1 - q)^2, and every measured count stays within 5 standard deviations. Every
--         retry is one more database read. base62 of an id from per-server ranges: none.
-- Part 2: redirects of 100 000 links, Zipf popularity (s = 1), 1800 clicks/s on a database of
--         2 workers (1 ms a read): uncached it runs at ~95 % load and queues; an LRU cache of
--         2000 links takes over half of the clicks and the database queue empties. A 301 is cached by the
--         browser: a user's later clicks on the same link (100 users, ~176 clicks each) never
--         reach the server: about a quarter of the clicks vanish from the analytics.
local lab = require "hldlab"

-- Part 1: collisions as the table fills.
local curve = lab.experiment{ name = "url shortener: collisions", seed = 42, duration = "20s" }
curve:workload{ arrivals = lab.constant{ rps = 1000 }, keys = lab.uniform{ n = 1000 }, writes = 1 }
local spaces = { 1000000, 100000, 40000, 25000 }
for _, m in ipairs(spaces) do
  curve:add{ lesson = "url_shortener", variant = "hash_retry", label = string.format("M=%d", m),
             params = { code_space = m } }
end
curve:add{ lesson = "url_shortener", variant = "base62_counter", params = { code_space = 25000 } }
local c = curve:run()
lab.report(c)
for _, m in ipairs(spaces) do
  local s = c[string.format("M=%d", m)]
  local mean, variance = 0, 0
  for i = 0, s.codes_created - 1 do
    local q = i / m
    mean = mean + q / (1 - q)
    variance = variance + q / (1 - q) ^ 2
  end
  lab.expect(math.abs(s.collisions - mean) < 5 * math.sqrt(variance),
             string.format("M=%d, %.0f %% full: %d collisions, theory %.0f (birthday bound n^2/2M = %.0f)",
                           m, 100 * s.fill, s.collisions, mean, s.codes_created ^ 2 / (2 * m)))
  lab.check(s.db_reads == s.codes_created + s.collisions, "one database read per candidate code")
end
lab.expect(c["M=25000"].retries_per_create > 5 * c["M=100000"].retries_per_create,
           string.format("retries grow as the table fills: %.2f per create at 20 %% full, %.2f at 80 %%",
                         c["M=100000"].retries_per_create, c["M=25000"].retries_per_create))
lab.expect(c.base62_counter.collisions == 0 and c.base62_counter.db_reads == 0
             and c.base62_counter.duplicate_codes == 0,
           string.format("base62 ids: 0 collisions and 0 reads, where the hash at 80 %% full made %d reads for %d codes",
                         c["M=25000"].db_reads, c["M=25000"].codes_created),
           { headline = true })

-- Part 2: redirects.
local exp = lab.experiment{ name = "url shortener: redirects", seed = 42, duration = "10s" }
exp:workload{ arrivals = lab.poisson{ rps = 1800 }, keys = lab.zipf{ n = 1e5, s = 1.0 },
              clients = 100, writes = 0.02 }
exp:add{ lesson = "url_shortener", variant = "hash_retry", params = { db_workers = 2 } }
exp:add{ lesson = "url_shortener", variant = "base62_counter", label = "cached",
         params = { db_workers = 2, cache_entries = 2000 } }
exp:add{ lesson = "url_shortener", variant = "base62_counter", label = "cached_301",
         params = { db_workers = 2, cache_entries = 2000, redirect = "301" } }
exp:at("0s", function(sys) sys:call("preload", { links = 100000 }) end)
local r = exp:run()
lab.report(r)
lab.check(r.hash_retry.clicks == r.cached.clicks, "the same clicks")
lab.expect(r.cached.hit_ratio > 0.5, string.format("the cache answers %.0f %% of redirects", 100 * r.cached.hit_ratio))
lab.expect(r.cached.redirect_p99 < r.hash_retry.redirect_p99 / 3,
           string.format("redirect P99 %.1f ms uncached -> %.1f ms behind the cache",
                         1000 * r.hash_retry.redirect_p99, 1000 * r.cached.redirect_p99))
lab.expect(r.cached.clicks_lost == 0, "302: every click reaches the server")
lab.expect(r.cached_301.clicks_lost > 0.1 * r.cached_301.clicks,
           string.format("301: %d of %d clicks (%.0f %%) never reach the analytics",
                         r.cached_301.clicks_lost, r.cached_301.clicks,
                         100 * r.cached_301.clicks_lost / r.cached_301.clicks))
