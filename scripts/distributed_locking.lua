-- Distributed locking: no lease vs lease vs lease + check vs lease + fencing token, on identical
-- traffic (Kleppmann, "How to do distributed locking", 2016).
--
-- 8 client processes increment one shared counter in storage, 50 jobs/s for 60 s. A job takes
-- the lock (1 s lease), reads the counter, works (lognormal, median 5 ms), writes counter + 1 and
-- releases the lock. Network delays 0.2-1 ms per message.
-- At 20 s the client holding the lock crashes in the middle of its work.
--   no_lease: the lock is held forever by a dead process: every later job times out.
--   the others: the lease runs out after 1 s and the jobs go on.
-- At 40 s the client holding the lock is paused for 3 s in the middle of its work (a GC pause).
--   lease: its lease runs out, the others go on incrementing; it wakes up, still believes it
--          holds the lock and writes the value it read 3 s ago plus one, `max_erased`
--          increments back. (If another client is mid read-modify-write at that moment, that
--          client's write puts the counter back and the stale increment is the one lost; if
--          not, every increment made during the pause stays lost.)
--   lease_check: checks its lease right before writing, sees it expired and gives up (error).
--   fencing: its write carries token n while the storage has already seen n + k: refused.
-- At 50 s the network holds the messages that the client holding the lock sends in the next
-- second for 2 s (a packet stuck in a queue): its write, sent when its work ends. (The window
-- is 1 s so that it covers the rest of any work: P(work > 1 s) is below 1e-6. With a 50 ms
-- window the write left after the window on 1 seed in 100, and nothing was delayed.)
--   lease_check: the check passed when the write left; it lands 2 s later anyway: unsafe.
--   fencing: refused again.
--
-- Part 2: no scripted fault, but every client stops for a GC pause about every 2 s (exponential,
-- mean 300 ms) with 200 ms leases: some pauses outlast the lease while holding the lock. Every
-- variant gets the same pauses (the lesson's random stream drives them alone).
--   lease: stale writes, lost increments (a handful to a few hundred, depending on where they
--          land): the counter ends below the number of successful jobs. A holder is paused about
--          0.14 times a second for longer than its lease (lock held 40% of the time x 0.5
--          pauses/s x P(pause > 200 ms) = e^(-2/3)): over 120 s, 17 expected stale holders, and
--          none at all with probability about e^-17 (4e-8; over 60 s it would be 2e-4).
--   fencing: every stale access refused, the counter equals the successful jobs.
--   no_lease: never unsafe, but the lock waits for every paused holder.
--   lease_check: safe here, but only because in this simulation the check and the send of the
--          write are one instant: in a real process a pause can fall between them, and a
--          delayed write (part 1, 50 s) gets through the check.
local lab = require "hldlab"

local variants = { "no_lease", "lease", "lease_check", "fencing" }
local exp = lab.experiment{ name = "distributed_locking: crash at 20s, pause at 40s, slow write at 50s",
                            seed = 42, duration = "60s" }
exp:workload{ arrivals = lab.poisson{ rps = 50 },
              service = lab.lognormal{ median = "5ms", p99 = "40ms" } }

-- Hit the client holding the lock while it works: check every millisecond from `from`.
local function when_holder_works(sys, from, action)
  local done = false
  for i = 0, 500 do
    sys:at(from + i / 1000, function(s)
      local lock = s:call("locks")[1]
      if not done and lock.held and lock.holder_phase == "working" then
        done = true
        action(s, lock.holder)
      end
    end)
  end
end

for _, v in ipairs(variants) do
  local sys = exp:add{ lesson = "distributed_locking", variant = v,
                       params = { clients = 8, resources = 1, lease = "1s", lock_timeout = "3s" } }
  when_holder_works(sys, 20, function(s, client) s:inject("crash", { client = client }) end)
  if v == "lease" or v == "fencing" then
    -- The end of the 3 s pause from 40 s, for the report's space-time diagram (--report):
    -- nodes 0-7 are the clients, 8 the lock service, 9 the storage.
    sys:trace{ from = "42.99s", to = "43.03s" }
  end
  when_holder_works(sys, 40, function(s, client)
    s:inject("pause", { client = client, duration = "3s" })
  end)
  when_holder_works(sys, 50, function(s, client)
    s:inject("slow_network", { client = client, extra = "2s", duration = "1s" })
  end)
end
local r = exp:run()
lab.report(r)

local nl, l, c, f = r.no_lease, r.lease, r.lease_check, r.fencing
lab.expect(nl.timeouts > 0.6 * 50 * 40, "no_lease: after the crash at 20s every job times out")
lab.expect(l.leases_expired >= 2 and f.leases_expired >= 2 and l.timeouts < nl.timeouts / 50 and
           f.timeouts < nl.timeouts / 50,
           "with a lease the crashed client's lock runs out after 1s and the jobs go on")
lab.expect(l.unsafe_writes >= 2 and l.lost_updates >= 2 and l.max_erased > 50,
           "lease: the paused client and the slow write land after the lease, over the increments made meanwhile")
lab.expect(c.unsafe_writes == 1 and c.lost_updates >= 1 and c.errors >= 2,
           "lease_check: gives up the paused write, but the delayed one passed its check and lands anyway")
lab.expect(f.lost_updates == 0 and f.unsafe_writes == 0 and f.max_erased == 0 and
           f.rejected_stale >= 2 and f.counter == f.ok,
           "fencing: the storage refuses both stale writes, the counter equals the successful jobs")

local gc = lab.experiment{ name = "distributed_locking: random GC pauses", seed = 42, duration = "120s" }
gc:workload{ arrivals = lab.poisson{ rps = 50 },
             service = lab.lognormal{ median = "5ms", p99 = "40ms" } }
for _, v in ipairs(variants) do
  gc:add{ lesson = "distributed_locking", variant = v,
          params = { clients = 8, resources = 1, lease = "200ms", pause_rate = 0.5,
                     pause_mean = "300ms" } }
end
local g = gc:run()
lab.report(g)
lab.expect(g.lease.unsafe_writes >= 1 and g.lease.counter < g.lease.ok and
           g.fencing.lost_updates == 0 and g.fencing.counter == g.fencing.ok,
           "random GC pauses: lease-only locking loses increments, fencing loses none",
           { headline = true })
lab.expect(g.fencing.rejected_stale >= 1 and g.fencing.errors == g.fencing.rejected_stale,
           "fencing: each stale access refused fails its own job, and only those")
lab.expect(g.no_lease.lost_updates == 0 and g.no_lease.unsafe_writes == 0,
           "no_lease is safe under pauses: the lock just waits for the paused holder")
