-- Search over a corpus of 5000 documents of 40 words (Zipf(1) over 5000 terms), 2-term queries
-- (Zipf(0.8) terms), top 10. 200 queries/s for 10 s. A shard request takes 1 ms of network plus
-- 100 ns per posting; one in a thousand is slow by 50 ms (a GC pause). The same queries and the
-- same slow shard requests for every variant:
--   scan                    one node reads all 200 000 words (20 ns each) for every query
--   index                   one node, an inverted index
--   sharded_4, sharded_32   the index over 4 or 32 shards, scatter-gather, exact top-k merge
--   hedged_32               32 shards with a replica each, hedged after 5 ms
--   timeout_32              32 shards, shards slower than 20 ms dropped from the answer
local lab = require "hldlab"

local exp = lab.experiment{ name = "distributed_search: scan vs index vs shards, hedging, timeouts",
                            seed = 42, duration = "10s" }
exp:workload{ arrivals = lab.poisson{ rps = 200 } }
exp:add{ lesson = "distributed_search", variant = "scan" }
exp:add{ lesson = "distributed_search", variant = "index" }
exp:add{ lesson = "distributed_search", variant = "sharded", params = { shards = 4 }, label = "sharded_4" }
exp:add{ lesson = "distributed_search", variant = "sharded", params = { shards = 32 }, label = "sharded_32" }
exp:add{ lesson = "distributed_search", variant = "sharded_hedged", params = { shards = 32 },
         label = "hedged_32" }
exp:add{ lesson = "distributed_search", variant = "sharded", params = { shards = 32, timeout = "20ms" },
         label = "timeout_32" }
local r = exp:run()
lab.report(r)

local scan, index, s4, s32, h32, t32 = r.scan, r.index, r.sharded_4, r.sharded_32, r.hedged_32,
                                       r.timeout_32
lab.expect(scan.words_per_query > 20 * index.postings_per_query and scan.p50 > 3 * index.p50,
           "the index reads 20x less than a scan and answers 3x faster", { headline = true })
-- One in 1000 shard requests is slow: a query over 4 shards is slow with probability 0.4 %,
-- over 32 with 3.2 %: about 8 and 64 of the 2000 queries; the P99 is the 20th slowest (Poisson:
-- P(at least 20 | mean 8) = 2e-4, P(under 20 | mean 64) < 1e-12).
lab.expect(s32.p99 > 0.04 and s4.p99 < 0.01,
           "tail at scale: 32 shards put a 50 ms pause in the P99, 4 shards do not")
lab.expect(h32.p99 < 0.01 and h32.hedges < 0.05 * 32 * h32.queries,
           "hedging to a replica after 5 ms removes it, hedging under 5 % of shard requests")
-- A dropped shard holds about 1/32 of the top 10: recall 1 - 3.2 % x 1/32 ~ 99.9 %.
lab.expect(t32.p99 <= 0.02 and t32.partial_answers > 0 and t32.recall < 1 and t32.recall > 0.99,
           "a 20 ms timeout bounds the P99 with partial answers: recall just under 100 %")
for _, sys in ipairs{ "scan", "index", "sharded_4", "sharded_32", "hedged_32", "timeout_32" } do
  lab.check(r[sys].completed == r[sys].requests, sys .. ": every query ends, exactly once")
end
