-- Distributed ids: auto-increment on two masters vs snowflake vs sonyflake, on identical traffic.
--
-- 20 000 id requests per second for 10 s, split over two workers (masters) by client id.
-- Auto-increment: each master counts 1, 2, 3, ... on its own, so the smaller run of ids is
-- duplicated entirely. Snowflake (ms | worker | seq) and sonyflake (10 ms | seq | machine) never
-- duplicate. At 4 s worker 1's clock jumps back 20 ms: the guarded generators wait it out;
-- a snowflake that ignores it reuses old milliseconds and duplicates ids. At 6 s worker 0 must
-- issue a burst of 20 000 ids at once: snowflake spreads them over 5 ms (4096 per ms).
local lab = require "hldlab"

local exp = lab.experiment{ name = "snowflake_ids", seed = 42, duration = "10s" }
exp:workload{ arrivals = lab.poisson{ rps = 20000 } }  -- ids take no service time
-- k-sorted check: an id is out of order when an id generated more than 35 ms later (more than
-- the 20 ms clock skew plus one 10 ms sonyflake tick) sorts before it.
exp:add{ lesson = "snowflake_ids", variant = "auto_increment", params = { order_tolerance = "35ms" } }
exp:add{ lesson = "snowflake_ids", variant = "snowflake", params = { order_tolerance = "35ms" } }
exp:add{ lesson = "snowflake_ids", variant = "sonyflake", params = { order_tolerance = "35ms" } }
exp:add{ lesson = "snowflake_ids", variant = "snowflake", label = "snowflake_unguarded",
         params = { on_backwards = "ignore", order_tolerance = "35ms" } }
exp:at("4s", function(sys) sys:inject("clock_backwards", { worker = 1, by = "20ms" }) end)
exp:at("6s", function(sys) sys:inject("burst", { worker = 0, count = 20000 }) end)
local r = exp:run()
lab.report(r)

local ai = r.auto_increment
lab.expect(ai.duplicates > ai.ids / 3, "auto-increment on two masters: over a third of the ids are duplicates")
lab.expect(r.snowflake.duplicates == 0 and r.sonyflake.duplicates == 0,
           "snowflake and sonyflake: no duplicate, even with the clock going back")
lab.expect(r.snowflake_unguarded.duplicates > 0,
           "a snowflake that ignores the clock going back reuses milliseconds and duplicates ids")
lab.expect(r.snowflake.max_ids_per_ms == 4096, "the burst is capped at 4096 ids per ms per worker")
lab.expect(r.sonyflake.max_ids_per_ms == 256, "sonyflake: at most 256 ids per 10 ms tick")
lab.expect(r.snowflake.waits >= 5, "snowflake waited for the clock and for fresh milliseconds")
lab.expect(r.snowflake.out_of_order == 0 and r.sonyflake.out_of_order == 0,
           "snowflake and sonyflake ids sort by time within the clock skew (k-sorted)")
lab.expect(ai.out_of_order > 0.1, "auto-increment ids from two masters do not sort by time")
