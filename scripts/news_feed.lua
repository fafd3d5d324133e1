-- News feed on a follower graph of 10000 users (median 20 follows, P99 300; each follow picks an
-- account Zipf(1) by popularity rank, so the most followed account has thousands of followers).
-- 1000 requests/s for 10 s, 5 % of them posts; key = reader or author, Zipf(0.7), so popular
-- accounts post more often. The same requests for every variant:
--   pull    fan-out on read: a read queries every followed account
--   push    fan-out on write: a post is inserted into every follower's timeline
--   hybrid  push for accounts under 1000 followers, celebrities pulled at read time
local lab = require "hldlab"

local exp = lab.experiment{ name = "news_feed: pull vs push vs hybrid on a heavy-tailed graph",
                            seed = 42, duration = "10s" }
exp:workload{ arrivals = lab.poisson{ rps = 1000 }, keys = lab.zipf{ n = 10000, s = 0.7 },
              writes = 0.05 }
local variants = { "pull", "push", "hybrid" }
local graph
for _, v in ipairs(variants) do
  local sys = exp:add{ lesson = "news_feed", variant = v }
  graph = sys:call("graph", {})
end
local r = exp:run()
lab.report(r)
print(string.format("graph: %d users, %d follows, %d celebrities, the top one has %d followers",
                    graph.users, graph.follows, graph.celebrities, graph.max_followers))

local pull, push, hybrid = r.pull, r.push, r.hybrid
lab.expect(hybrid.read_p99 * 5 < pull.read_p99 and hybrid.staleness_p99 * 5 < push.staleness_p99,
           "hybrid reads 5x faster than pull at P99 and its posts are 5x fresher than push's",
           { headline = true })
lab.expect(push.max_writes_per_post > 1000 and hybrid.max_writes_per_post <= 1000,
           "a celebrity's post costs push thousands of writes; hybrid never more than 1000")
lab.expect(pull.writes_per_post == 1 and push.writes_per_post > 4 * hybrid.writes_per_post,
           "push writes 4x more per post than hybrid; pull writes each post once")
lab.expect(push.queries_per_read == 1 and pull.queries_per_read > 3 * hybrid.queries_per_read,
           "pull reads cost 3x the queries of hybrid reads; push reads are one query")
lab.expect(push.storage_bytes > 2 * hybrid.storage_bytes,
           "push stores a copy of every post per follower: twice hybrid's storage")
for _, v in ipairs(variants) do
  lab.check(r[v].completed == r[v].requests, v .. ": every request ends, exactly once")
  lab.check(r[v].posts == r.pull.posts, v .. ": the same posts")
end
