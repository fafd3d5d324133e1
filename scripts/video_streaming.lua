-- Video streaming: 200 viewing sessions (20 per second for 10 s) of a 5-minute video in 4 s
-- segments, on the ladder 0.3 / 0.75 / 1.2 / 1.85 / 2.85 / 4.3 Mbit/s. Each session's link has a
-- base rate ~ lognormal(median 3 Mbit/s, P99 20 Mbit/s) and drops to 20 % of it for 10 s on
-- average every 30 s (a Markov process); the same link for every variant:
--   fixed_high  always 4.3 Mbit/s
--   fixed_low   always 0.75 Mbit/s
--   throughput  highest rung under 0.9 x the harmonic mean of the last 5 segments' throughput
--   bba         buffer-based: lowest rung under 10 s of buffer, top rung over 40 s, linear between
local lab = require "hldlab"

local exp = lab.experiment{ name = "video_streaming: fixed bitrate vs adaptive bitrate",
                            seed = 42, duration = "10s", drain = "10m" }
exp:workload{ arrivals = lab.poisson{ rps = 20 } }
local variants = { "fixed_high", "fixed_low", "throughput", "bba" }
for _, v in ipairs(variants) do
  exp:add{ lesson = "video_streaming", variant = v }
end
local r = exp:run()
lab.report(r)

local high, low, tput, bba = r.fixed_high, r.fixed_low, r.throughput, r.bba
print(string.format("abandoned %d %d %d %d stallsessions %d %d",
  high.abandoned, low.abandoned, tput.abandoned, bba.abandoned, high.sessions_with_stall, bba.sessions_with_stall))
lab.expect(high.rebuffer_ratio > 5 * tput.rebuffer_ratio and
           high.rebuffer_ratio > 5 * bba.rebuffer_ratio and
           tput.mean_bitrate > 1.5 * low.mean_bitrate and bba.mean_bitrate > 1.5 * low.mean_bitrate,
           "adaptive bitrate stalls 5x less than the top bitrate and streams 1.5x the low one",
           { headline = true })
lab.expect(high.abandoned > 10 * (tput.abandoned + bba.abandoned + 1),
           "the top bitrate makes viewers give up (a minute of waiting) 10x as often as ABR")
lab.expect(high.sessions_with_stall > 2 * bba.sessions_with_stall,
           "the top bitrate stalls twice as many sessions as buffer-based ABR")
lab.expect(bba.startup_mean < high.startup_mean / 3 and tput.startup_mean < high.startup_mean / 3,
           "ABR starts on a low rung: a third of the top bitrate's startup delay")
lab.expect(high.switches_per_session == 0 and tput.switches_per_session > 0,
           "ABR pays with bitrate switches; a fixed bitrate never switches")
for _, v in ipairs(variants) do
  lab.check(r[v].completed == r[v].requests, v .. ": every session ends, exactly once")
  lab.check(r[v].mean_link == r.fixed_high.mean_link, v .. ": the same links")
end
