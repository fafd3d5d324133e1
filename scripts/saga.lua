-- Sagas: order -> inventory -> payment -> shipping, on identical traffic in four variants.
--
-- Part 1: for each step k, 20% of the orders fail at step k (the same orders in every variant).
--         Without compensation, steps 0..k-1 stay applied: every failed order past step 0 is
--         left inconsistent (stock reserved, card charged). The orchestrated and choreographed
--         sagas run k compensations in reverse order and leave none; 2PC aborts atomically.
-- Part 2: the coordinator crashes at 20 s for 10 s. 2PC participants that voted yes stay
--         blocked, holding their locks, until it restarts; the orchestrator resumes its sagas
--         from its log with nobody locked; choreography has no coordinator at all.
--         The transactions caught in doubt are those preparing at the crash: Poisson with mean
--         rps x E[hop + service + hop] = rps x 34.6 ms (the lognormal's mean is 32.6 ms). At
--         100 orders/s that is 3.5, and none at all 3% of the time (e^-3.5); at 1000 orders/s
--         it is 35, none with probability e^-35 = 6e-16, so this part runs at 1000 orders/s.
local lab = require "hldlab"

local variants = { "no_compensation", "two_phase_commit", "orchestration", "choreography" }

for k = 0, 3 do
  local exp = lab.experiment{ name = "saga: 20% fail at step " .. k, seed = 42, duration = "60s" }
  exp:workload{ arrivals = lab.poisson{ rps = 100 },
                service = lab.lognormal{ median = "20ms", p99 = "200ms" } }
  for _, v in ipairs(variants) do
    exp:add{ lesson = "saga", variant = v, params = { fail_step = k, fail_rate = 0.2 } }
  end
  local r = exp:run()
  lab.report(r)
  local failed = r.orchestration.failed
  lab.check(r.no_compensation.failed == failed and r.choreography.failed == failed
            and r.two_phase_commit.failed == failed, "step " .. k .. ": the same orders fail everywhere")
  if k == 0 then
    lab.expect(r.no_compensation.inconsistent == 0, "a failure at the first step leaves nothing behind")
  else
    lab.expect(r.no_compensation.inconsistent == failed,
               "step " .. k .. ": without compensation every failed order is left inconsistent")
  end
  lab.expect(r.orchestration.inconsistent == 0 and r.choreography.inconsistent == 0
             and r.two_phase_commit.inconsistent == 0, "step " .. k .. ": sagas and 2PC leave none",
             { headline = k == 2 })
  lab.expect(r.orchestration.compensations == k * failed and r.choreography.compensations == k * failed,
             "step " .. k .. ": each failed order ran exactly " .. k .. " compensations")
end

local crash = lab.experiment{ name = "saga: coordinator crash at 20s for 10s", seed = 42, duration = "60s" }
crash:workload{ arrivals = lab.poisson{ rps = 1000 },
                service = lab.lognormal{ median = "20ms", p99 = "200ms" } }
for _, v in ipairs(variants) do
  local sys = crash:add{ lesson = "saga", variant = v, params = { fail_step = 2, fail_rate = 0.05 } }
  -- 20 ms around the crash, for the report's space-time diagram (--report): node 0 is the
  -- coordinator, 1-4 the services.
  sys:trace{ from = "19.99s", to = "20.01s" }
end
crash:at("20s", function(sys) sys:inject("crash_coordinator", { ["for"] = "10s" }) end)
local c = crash:run()
lab.report(c)
lab.expect(c.two_phase_commit.blocked_participants > 0,
           "2PC: participants that voted yes stay blocked holding locks during the crash")
lab.expect(c.two_phase_commit.blocked_s > 9 * c.two_phase_commit.blocked_participants,
           "2PC: each stays blocked about 10 s, until the coordinator restarts")
lab.expect(c.orchestration.blocked_participants == 0 and c.orchestration.inconsistent == 0,
           "orchestration: nobody locked, nothing inconsistent")
lab.expect(c.choreography.rejected == 0, "choreography: no coordinator, no outage")
lab.expect(c.no_compensation.inconsistent > 0, "no compensation still leaves half-done orders")
