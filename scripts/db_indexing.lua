-- Database indexing: why is this query slow? One table, orders(id, customer_id, status,
-- created_at, amount), 100 000 rows of 128 bytes in 8 KiB pages (1563 pages), the same rows
-- in every system (drawn from the seed). Indexes are real B+-trees of 8 KiB pages: 512 entries
-- per page for one 8-byte column, so ceil(log_512 100 000) = 2 levels. Every page read costs
-- 0.1 ms (an SSD random read), 25 us when read in sequence by a Seq Scan; 0.2 us per row
-- examined; 16 statements at once. Requests carry the values: key -> customer, status, day.
--
-- Part 1  WHERE customer_id = ?          no index vs a B+-tree on customer_id
-- Part 2  the leftmost-prefix rule        created_at alone vs an index on (customer_id, created_at)
-- Part 3  a covering index                SELECT amount ... on (customer_id) vs (customer_id, amount)
-- Part 4  selectivity                     WHERE status = ?: 60 % of the rows for 'delivered'
-- Part 5  write amplification             INSERT throughput with 0 to 4 indexes
--
-- Theory: the table has P = ceil(100 000 / 64) = 1563 pages; a Seq Scan reads all of them
-- whatever the query. A bulk-loaded B+-tree is ceil(log_B n) nodes high; an index lookup reads
-- that many (one more when the matching entries straddle two leaves) plus one heap page per
-- row fetched. These counts are exact, so the claims on them hold on every seed; the latency
-- claims leave a factor of 3 or more (queues stay short: under 10 % load).
local lab = require "hldlab"

local rows = 100000
local heap_pages = math.ceil(rows / 64)
local function lookups(name, rps, duration)
  local exp = lab.experiment{ name = name, seed = 42, duration = duration or "5s" }
  exp:workload{ arrivals = lab.poisson{ rps = rps }, keys = lab.uniform{ n = rows / 8 } }
  return exp
end
local function explain(sys, key)
  print(sys.label .. ":\n" .. sys:call("explain", { key = key }).plan .. "\n")
end

-- Part 1 ------------------------------------------------------------------------------------
local exp = lookups("db_indexing: WHERE customer_id = ? (100 000 rows), 20 queries/s", 20)
local scan = exp:add{ lesson = "db_indexing", variant = "full_scan", label = "no index" }
local idx = exp:add{ lesson = "db_indexing", variant = "index", label = "index (customer_id)",
                     params = { indexes = "customer_id" } }
local r = exp:run()
lab.report(r)
explain(scan, 42)
explain(idx, 42)
local tree = idx:call("stats", {}).indexes[1]
lab.expect(tree.height == tree.formula_height and tree.height == 2,
           string.format("the B+-tree is ceil(log_%d %d) = %d levels high", tree.fanout,
                         tree.entries, tree.formula_height))
local a, b = r["no index"], r["index (customer_id)"]
lab.expect(a.pages_per_select == heap_pages and a.rows_examined_per_select == rows,
           "without an index every lookup reads all 1563 pages and 100 000 rows for ~8 of them")
lab.expect(b.index_pages_per_select >= 2 and b.index_pages_per_select <= 3
           and b.heap_pages_per_select <= b.rows_per_select,
           string.format("the index reads its height (%.2f pages) and a page per row (%.2f)",
                         b.index_pages_per_select, b.heap_pages_per_select))
lab.expect(b.pages_per_select * 50 < a.pages_per_select and b.p50 * 20 < a.p50,
           string.format("pages per lookup %d -> %.1f; P50 %.1f ms -> %.2f ms", a.pages_per_select,
                         b.pages_per_select, a.p50 * 1e3, b.p50 * 1e3), { headline = true })
lab.check(a.rows_per_select == b.rows_per_select, "both found the same rows")

-- Part 2 ------------------------------------------------------------------------------------
-- Two systems that differ only in their index, on one query: the results of each, and the
-- EXPLAIN of the query of key 42 in both.
local function two_indexes(title, query, variant, first, second)
  local e = lookups(title, 20)
  local systems = {}
  for _, columns in ipairs{ first, second } do
    systems[#systems + 1] = e:add{ lesson = "db_indexing", variant = variant, label = "(" .. columns .. ")",
                                   params = { query = query, indexes = columns } }
  end
  local results = e:run()
  lab.report(results)
  for _, sys in ipairs(systems) do explain(sys, 42) end
  local x, y = results["(" .. first .. ")"], results["(" .. second .. ")"]
  lab.check(x.rows_per_select == y.rows_per_select, "both found the same rows")
  return x, y
end

a, b = two_indexes("db_indexing: WHERE created_at within one day, 20 queries/s", "created_range",
                   "cost_based", "customer_id, created_at", "created_at, customer_id")
lab.expect(a.index_scan_share == 0 and a.pages_per_select == heap_pages,
           "an (customer_id, created_at) index cannot search created_at alone: every query scans")
lab.expect(b.index_scan_share == 1 and b.pages_per_select < 10,
           string.format("with created_at first the same query reads %.1f pages", b.pages_per_select))

a, b = two_indexes("db_indexing: WHERE customer_id = ? AND created_at in the last 90 days",
                   "customer_recent", "index", "customer_id", "customer_id, created_at")
-- 90 of 365 days: the one-column index fetches all ~8 rows of the customer to keep ~2.
lab.expect(b.heap_pages_per_select * 2 < a.heap_pages_per_select,
           string.format("the composite index fetches only the rows of the range: %.2f heap pages -> %.2f",
                         a.heap_pages_per_select, b.heap_pages_per_select))

-- Part 3 ------------------------------------------------------------------------------------
a, b = two_indexes("db_indexing: SELECT amount WHERE customer_id = ?, 20 queries/s", "customer_amount",
                   "index", "customer_id", "customer_id, amount")
lab.expect(b.heap_pages_per_select == 0 and a.heap_pages_per_select > 5,
           string.format("a covering index needs no table page (%.2f -> 0): an Index Only Scan",
                         a.heap_pages_per_select))
lab.expect(b.p50 * 3 < a.p50, "and answers in a third of the time")

-- Part 4 ------------------------------------------------------------------------------------
exp = lookups("db_indexing: WHERE status = ? (60/20/15/4.9/0.1 % of the rows), 5 queries/s", 5, "20s")
local scan4 = exp:add{ lesson = "db_indexing", variant = "full_scan", label = "no index",
                       params = { query = "status" } }
local rule = exp:add{ lesson = "db_indexing", variant = "index", label = "index (status)",
                      params = { query = "status", indexes = "status" } }
local cost = exp:add{ lesson = "db_indexing", variant = "cost_based", label = "cost-based (status)",
                      params = { query = "status", indexes = "status" } }
r = exp:run()
lab.report(r)
explain(rule, 0)
explain(cost, 0)
explain(cost, 4)
a, b = r["no index"], r["index (status)"]
local c = r["cost-based (status)"]
-- Per value (request key % 5 picks it): thousands of rows spread over the table make the index
-- read nearly every page, each at random (and its own leaves): P (1 - e^(-m/P)) pages for m
-- rows, 1496 of 1563 for the 4 900 'cancelled' rows, against 1563 pages in sequence at a
-- quarter of the price. Only 'disputed' (0.1%, ~100 rows) is cheaper through the index.
local slower = true
for key = 0, 3 do
  slower = slower and rule:call("explain", { key = key }).time > 2 * scan4:call("explain", { key = key }).time
end
lab.expect(slower and rule:call("explain", { key = 4 }).time < scan4:call("explain", { key = 4 }).time,
           "for the four common statuses the index takes over twice the scan's time; only for "
           .. "'disputed' (0.1%) is it faster")
-- A fifth of the queries ask for 'disputed'; the mean through the index is ~137 ms against 59
-- (below 1.5x only if over half of the queries were for 'disputed', 7 standard deviations off).
lab.expect(b.mean > 1.5 * a.mean,
           string.format("so an index on a low-selectivity column loses to the scan: mean %.0f ms vs %.0f ms",
                         b.mean * 1e3, a.mean * 1e3))
lab.expect(c.mean < a.mean and c.index_scan_share > 0 and c.index_scan_share < 0.5,
           string.format("the cost-based planner scans for common values and uses the index for "
                         .. "'disputed' (%.0f%% of queries): mean %.0f ms", c.index_scan_share * 100,
                         c.mean * 1e3))
lab.check(a.rows_per_select == c.rows_per_select and b.rows_per_select == c.rows_per_select,
          "the three found the same rows")

-- Part 5 ------------------------------------------------------------------------------------
exp = lab.experiment{ name = "db_indexing: INSERTs from 32 clients (closed loop), 0 to 4 indexes",
                      seed = 42, duration = "500ms" }
exp:workload{ arrivals = lab.closed{ clients = 32, think = "0s" }, keys = lab.uniform{ n = rows / 8 },
              writes = 1 }
local sets = { "", "customer_id", "customer_id; created_at", "customer_id; created_at; status",
               "customer_id; created_at; status; customer_id,amount" }
for i, set in ipairs(sets) do
  exp:add{ lesson = "db_indexing", variant = i == 1 and "full_scan" or "index",
           label = (i - 1) .. " indexes", params = { indexes = set } }
end
r = exp:run()
lab.report(r)
print("indexes  pages per INSERT  INSERTs/s")
for i = 1, #sets do
  local s = r[(i - 1) .. " indexes"]
  print(string.format("%7d  %16.2f  %9.0f", i - 1, s.pages_per_insert, s.throughput))
end
lab.expect(r["0 indexes"].pages_per_insert == 1, "with no index an INSERT writes one heap page")
local ok = true
for i = 2, #sets do
  local before, after = r[(i - 2) .. " indexes"], r[(i - 1) .. " indexes"]
  -- each index: its height (2) in page reads and its leaf written, at least
  ok = ok and after.pages_per_insert >= before.pages_per_insert + 3
          and after.throughput < before.throughput
end
lab.expect(ok, "every index adds at least 3 pages to every INSERT and lowers the write throughput")
lab.expect(r["4 indexes"].throughput * 4 < r["0 indexes"].throughput,
           string.format("4 indexes cut INSERT throughput %.0f/s -> %.0f/s",
                         r["0 indexes"].throughput, r["4 indexes"].throughput))
for i = 1, #sets do
  local s = r[(i - 1) .. " indexes"]
  lab.check(s.completed == s.requests, "every INSERT ends exactly once")
end
