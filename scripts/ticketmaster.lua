-- Ticket sale: 1000 tickets for one hot event. A background of 50 purchases/s, then the on-sale
-- moment: 5000 purchases/s for 3 s at 2 s. At 8 s, 1000 more tickets go on sale (restock) with a
-- second 3 s spike, while the database is 3x slower (slow_db: statements of 600 us instead of
-- 200 us): a wider race window. The same purchases for every variant; the DB is 0.5 ms away.
--   read_check_write    SELECT remaining; UPDATE SET remaining = <read> - 1: oversells
--   optimistic_locking  UPDATE ... WHERE version = v, retried on 0 rows (5 retries)
--   atomic_decrement    UPDATE SET remaining = remaining - 1 WHERE remaining > 0
--   pessimistic_lock    SELECT ... FOR UPDATE; UPDATE; COMMIT: correct but one at a time
local lab = require "hldlab"

local stock = 1000
local exp = lab.experiment{ name = "ticketmaster: two on-sale spikes, the second on a slow DB",
                            seed = 42, duration = "14s" }
exp:workload{
  arrivals = lab.poisson{ rps = 50, spikes = { { at = "2s", duration = "3s", rps = 5000 },
                                               { at = "8s", duration = "3s", rps = 5000 } } },
}
for _, v in ipairs{ "read_check_write", "optimistic_locking", "atomic_decrement",
                    "pessimistic_lock" } do
  exp:add{ lesson = "ticketmaster", variant = v, params = { stock = stock, db_delay = "500us" } }
end
local first = {}
exp:at("8s", function(sys)
  first[sys.label] = sys:call("stats", {})
  sys:inject("restock", { count = stock })
  sys:inject("slow_db", { factor = 3, duration = "3s" })
end)
local r = exp:run()
lab.report(r)
-- Tickets sold beyond the stock put on sale, per sale (each sale offers `stock` tickets).
local function oversold(v)
  return first[v].sold - stock, r[v].sold - first[v].sold - stock
end
print("sold - stock         first sale (fast DB)   second sale (slow DB)")
for _, v in ipairs{ "read_check_write", "optimistic_locking", "atomic_decrement",
                    "pessimistic_lock" } do
  print(string.format("%-20s %22d %23d", v, oversold(v)))
end

local naive, occ, atomic, lock = r.read_check_write, r.optimistic_locking, r.atomic_decrement,
                                 r.pessimistic_lock
lab.expect(naive.oversold > 1000 and atomic.oversold == 0 and occ.oversold == 0,
           "read-check-write oversells by more than a whole stock; CAS and atomic decrement never",
           { headline = true })
lab.expect(atomic.sold == 2 * stock and lock.sold == 2 * stock,
           "atomic decrement and the row lock sell exactly the 2000 tickets, not one more")
lab.expect(occ.sold <= 2 * stock and lock.oversold == 0,
           "optimistic locking and the lock never sell more than the stock")
lab.expect(naive.lost_decrements >= naive.oversold,
           "every oversold ticket is a decrement overwritten by a stale write (lost update)")
local fast, slow = oversold("read_check_write")
lab.expect(slow > fast * 1.2,
           "a slower DB widens the race window: the second sale oversells 20% more than the first")
lab.expect(occ.gave_up_with_stock > 1000,
           "optimistic locking under a spike: over a thousand buyers give up while tickets remain")
lab.expect(occ.retries > 1000 and atomic.retries == 0,
           "optimistic locking pays in retries under contention; the atomic decrement needs none")
lab.expect(atomic.db_statements < occ.db_statements,
           "the atomic decrement needs the fewest statements")
lab.expect(atomic.p99 < occ.p99 and atomic.p99 < lock.p99,
           "and answers fastest: the lock queues, the CAS retries")
for _, v in ipairs{ "read_check_write", "optimistic_locking", "atomic_decrement",
                    "pessimistic_lock" } do
  lab.check(r[v].completed == r[v].requests, v .. ": every purchase ends, exactly once")
end
