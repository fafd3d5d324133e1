-- API design: the cost of a screen in round trips, bytes and queries; offset vs keyset pages.
--
-- Part 1: a mobile client (100 ms round trip, 1 MB/s) renders 200 screens a second, each a
--         user, their 20 timeline posts and each post's author. REST needs 2 + 20 round trips
--         one after the other and returns whole resources; GraphQL, GraphQL with DataLoader and
--         a composite endpoint need one, and return only the screen's fields (real JSON,
--         serialised by the plugin). Naive GraphQL resolvers still query the database 22 times
--         per screen (N + 1); DataLoader batches the authors: 3; the composite join: 2.
-- Part 2: pagination of a feed of 10 000 rows, pages of 20. Offset pagination reads and throws
--         away every row before the page: page k scans 20 (k + 1) rows; keyset seeks the
--         cursor in the index (log2 n comparisons) and reads 20. With 3 rows inserted at the
--         top before each page, offset returns 3 rows again on each later page (exactly
--         3 x (pages - 1) duplicates); with 2 returned rows deleted before each page, it skips
--         2 unseen rows per page (2 x (pages - 1) misses). Keyset: none of either.
local lab = require "hldlab"

local exp = lab.experiment{ name = "api design: one screen", seed = 42, duration = "10s" }
exp:workload{ arrivals = lab.poisson{ rps = 200 }, keys = lab.uniform{ n = 10000 } }
for _, v in ipairs{ "rest", "graphql", "graphql_dataloader", "composite" } do
  exp:add{ lesson = "api_design", variant = v }
end
local r = exp:run()
lab.report(r)
lab.check(r.rest.requests == r.composite.requests, "the same screens")
lab.expect(r.rest.round_trips == 22 and r.graphql.round_trips == 1,
           "REST: 22 round trips per screen; a query-shaped API: 1")
lab.expect(r.graphql.p50 < r.rest.p50 / 10,
           string.format("screen time %.2f s with REST -> %.0f ms with one query", r.rest.p50,
                         1000 * r.graphql.p50), { headline = true })
lab.expect(r.rest.overfetched_bytes > 2 * r.graphql.response_bytes and r.graphql.overfetched_bytes == 0,
           string.format("REST sends %.0f bytes per screen, %.0f of them unused; GraphQL %.0f",
                         r.rest.response_bytes, r.rest.overfetched_bytes, r.graphql.response_bytes))
lab.expect(r.graphql.db_queries == 22 and r.graphql_dataloader.db_queries == 3 and r.composite.db_queries == 2,
           "database queries per screen: 22 with naive resolvers (N + 1), 3 with DataLoader, 2 with a join")

-- Part 2: pagination, on one system (the walk does not depend on the variant).
local pages = lab.experiment{ name = "api design: pagination", seed = 42, duration = "1s" }
pages:workload{ arrivals = lab.poisson{ rps = 1 }, keys = lab.uniform{ n = 10 } }
local sys = pages:add{ lesson = "api_design", variant = "composite" }
local function walk(mode, n, inserts, deletes)
  return sys:call("paginate", { mode = mode, rows = 10000, page_size = 20, pages = n,
                                inserts_per_page = inserts, deletes_per_page = deletes })
end
print("page depth   offset rows scanned   keyset rows scanned   keyset index comparisons")
local deep_offset, deep_keyset
for _, depth in ipairs{ 1, 10, 100, 500 } do
  local o, k = walk("offset", depth, 0, 0), walk("keyset", depth, 0, 0)
  print(string.format("%10d   %19d   %19d   %18d", depth, o.last_page_rows_scanned,
                      k.last_page_rows_scanned, k.last_page_comparisons))
  deep_offset, deep_keyset = o, k
end
lab.expect(deep_offset.last_page_rows_scanned == 500 * 20 and deep_keyset.last_page_rows_scanned == 20,
           "page 500: offset scans 10 000 rows, keyset 20")
local oi, ki = walk("offset", 10, 3, 0), walk("keyset", 10, 3, 0)
lab.expect(oi.duplicates == 27 and ki.duplicates == 0,
           string.format("3 inserts before each of 9 later pages: offset returns %d rows twice, keyset %d",
                         oi.duplicates, ki.duplicates))
local od, kd = walk("offset", 10, 0, 2), walk("keyset", 10, 0, 2)
lab.expect(od.misses == 18 and kd.misses == 0,
           string.format("2 deletes before each of 9 later pages: offset skips %d rows, keyset %d",
                         od.misses, kd.misses))
pages:run()
