-- Idempotency keys: a payment API charges each purchase (one request) on a worker, the client
-- waits at most 1 s for the answer. 200 purchases/s for 60 s, the same for every variant.
--
-- Faults: from 10 s to 30 s the network loses 20% of the service's answers (after the charge
-- committed); from 40 s to 50 s charges take 10x longer (median 500 ms), so many outlast the
-- client's timeout while they still commit.
--   no_retry          gives up on a timeout: the user sees a failure for a purchase that was paid
--   retry             retries (4 attempts, exponential backoff with jitter): every retry of a
--                     purchase whose answer was lost, or whose charge is slow, charges again
--   key_after_charge  stores the key only once the charge is done: safe against lost answers,
--                     not against a retry arriving while the first charge still runs
--   idempotency_key   stores the key as in progress before charging: never charges twice
--   key_ttl_500ms     the same with keys kept 500 ms, shorter than the retry delay
local lab = require "hldlab"

local exp = lab.experiment{ name = "idempotency: lost answers 10s..30s, slow charges 40s..50s",
                            seed = 42, duration = "60s" }
exp:workload{
  arrivals = lab.poisson{ rps = 200 },
  service = lab.lognormal{ median = "50ms", p99 = "250ms" },
}
for _, v in ipairs{ "no_retry", "retry", "key_after_charge", "idempotency_key" } do
  exp:add{ lesson = "idempotency", variant = v }
end
exp:add{ lesson = "idempotency", variant = "idempotency_key", label = "key_ttl_500ms",
         params = { key_ttl = "500ms" } }
-- Snapshot before the slow phase: what the lost answers alone did (their retries are over by then).
local before = {}
exp:at("40s", function(sys) before[sys.label] = sys:call("stats", {}) end)
exp:at("10s", function(sys) sys:inject("drop_responses", { share = 0.2, duration = "20s" }) end)
exp:at("40s", function(sys) sys:inject("slow_service", { factor = 10, duration = "10s" }) end)
local r = exp:run()
lab.report(r)
print("double charges   lost answers (0..40s)   slow charges (40s..end)")
for _, v in ipairs{ "retry", "key_after_charge", "idempotency_key", "key_ttl_500ms" } do
  print(string.format("%-17s %20d %24d", v, before[v].double_charges,
                      r[v].double_charges - before[v].double_charges))
end

lab.expect(r.idempotency_key.double_charges == 0 and r.retry.double_charges > 1000,
           "retry on timeout double charges over a thousand purchases; the idempotency key none",
           { headline = true })
lab.expect(r.idempotency_key.ok >= r.retry.ok and r.idempotency_key.ok > r.no_retry.ok,
           "the key keeps every success of retrying (and more than giving up)")
lab.expect(r.no_retry.charged_but_failed > 500,
           "giving up on a timeout: hundreds of users told 'failed' for a purchase that was paid")
lab.expect(r.idempotency_key.charged_but_failed < r.no_retry.charged_but_failed / 10,
           "with the key, retries turn those into successes (ten times fewer charged-but-failed)")
lab.expect(before.key_after_charge.double_charges < before.retry.double_charges / 100 and
           r.key_after_charge.double_charges - before.key_after_charge.double_charges > 100,
           "a key stored after the charge stops the lost-answer double charges, not the slow ones")
lab.expect(r.key_ttl_500ms.double_charges > 0,
           "keys that expire before the retry arrives charge again")
for _, v in ipairs{ "no_retry", "retry", "key_after_charge", "idempotency_key", "key_ttl_500ms" } do
  lab.check(r[v].completed == r[v].requests, v .. ": every purchase ends, exactly once")
end
