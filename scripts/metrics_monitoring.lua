-- Monitoring 50 services: 2000 latency samples/s for 20 s from 20000 users (the sample's user is
-- its client id). At 5 s target 7 dies (kill_target): its samples are lost from then on. The
-- same samples, the same death for every variant:
--   raw_push     every raw sample labelled with its user id; pushed; alert when silent for 5 min
--   rollup_push  1-minute and 1-hour rollups per target, the user label aggregated away; pushed
--   rollup_pull  the same, scraped every 15 s: a failed scrape alerts
local lab = require "hldlab"

local exp = lab.experiment{ name = "metrics_monitoring: raw vs rollups, push vs pull",
                            seed = 42, duration = "20s", drain = "10m" }
exp:workload{ arrivals = lab.poisson{ rps = 2000 }, keys = lab.uniform{ n = 1000 },
              clients = 20000 }
local variants = { "raw_push", "rollup_push", "rollup_pull" }
for _, v in ipairs(variants) do
  exp:add{ lesson = "metrics_monitoring", variant = v }
end
exp:at("5s", function(sys) sys:inject("kill_target", { target = 7 }) end)
local r = exp:run()
lab.report(r)

local raw, push, pull = r.raw_push, r.rollup_push, r.rollup_pull
lab.expect(raw.bytes_30d > 100 * push.bytes_30d and raw.series > 100 * push.series and
           pull.alert_delay_mean * 10 < push.alert_delay_mean,
           "rollups store 100x less over 30 days, bounded labels keep 100x fewer series, and " ..
           "pull alerts on a dead target 10x sooner than push", { headline = true })
lab.expect(raw.query_points_30d > 1000 * push.query_points_30d,
           "a 30-day query reads 1000x fewer points from hourly rollups")
-- 20000 users over 50 targets, 40000 samples: each (target, user) pair is seen with probability
-- 1 - e^{-40000 / 10^6} ~ 3.9 %: ~39000 series of 4 KiB.
lab.expect(raw.series > 30000 and push.series == 50,
           "a user-id label makes one series per (target, user): tens of thousands, not 50")
lab.expect(pull.alert_delay_max <= 15 and push.alert_delay_mean >= 300,
           "pull alerts within one 15 s scrape interval; push only after 5 minutes of silence")
lab.check(math.abs(raw.total - push.total) < 1e-6 * raw.total and
          math.abs(raw.total - pull.total) < 1e-6 * raw.total,
          "the rollups hold exactly the sum of the raw samples")
for _, v in ipairs(variants) do
  lab.check(r[v].completed == r[v].requests, v .. ": every sample ends, exactly once")
  lab.check(r[v].alerts == 1, v .. ": the dead target is alerted once")
end
