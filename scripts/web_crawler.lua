-- A crawl of a synthetic web: 200 hosts of 1000 pages, 8 links per page (60 % to the same host,
-- the others to a host drawn Zipf(1.2): a few hosts get most of the links), 10 % of every
-- host's pages disallowed by robots.txt. The crawler has 40 fetch slots per second for 20 s; a
-- fetch takes 200 ms. A host answers 429 beyond 2 requests in one second and bans the crawler
-- after 5 of them. The same web, the same slots for every variant:
--   naive           one FIFO frontier, every link appended, no politeness, no robots.txt
--   polite_hashset  a queue per host, 1 s between two fetches of a host, an exact seen set
--   polite_bloom    the same with a 4 KiB Bloom filter (32768 bits, 4 hashes) of seen URLs
local lab = require "hldlab"

local exp = lab.experiment{ name = "web_crawler: one FIFO vs per-host politeness and dedup",
                            seed = 42, duration = "20s" }
exp:workload{ arrivals = lab.constant{ rps = 40 } }
local variants = { "naive", "polite_hashset", "polite_bloom" }
for _, v in ipairs(variants) do
  exp:add{ lesson = "web_crawler", variant = v }
end
local r = exp:run()
lab.report(r)

local naive, exact, bloom = r.naive, r.polite_hashset, r.polite_bloom
lab.expect(exact.pages > 1.5 * naive.pages and naive.banned_hosts > 0 and exact.banned_hosts == 0,
           "per-host politeness crawls 1.5x the pages of one FIFO, which gets itself banned",
           { headline = true })
lab.expect(naive.max_host_rate > 2 and exact.max_host_rate <= 1 and bloom.max_host_rate <= 1,
           "one FIFO sends a host more than it tolerates; politeness keeps every host at 1/s")
lab.expect(naive.duplicate_fetches > 50 and exact.duplicate_fetches == 0 and
           bloom.duplicate_fetches == 0,
           "without a seen set the same URLs are requested again (over 50 times); with one never")
lab.expect(naive.robots_violations > 0 and exact.robots_violations == 0,
           "the naive crawler fetches pages robots.txt forbids; the polite one none")
lab.expect(bloom.missed_urls > 0 and exact.missed_urls == 0 and bloom.seen_bytes < exact.seen_bytes,
           "a Bloom filter in fixed memory misses URLs it takes for seen; the hash set misses none")
for _, v in ipairs(variants) do
  lab.check(r[v].completed == r[v].requests, v .. ": every fetch slot ends, exactly once")
end
