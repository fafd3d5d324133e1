-- Horizontal scaling: one big server vs N small stateless ones, on identical traffic.
--
-- Part 1: 1000 rps from 500 users. At 10 s a server dies (the big one, or server 1 of 4); it
--         restarts at 15 s with empty memory.
--         one_big_server: every request fails for 5 s, then every returning user is logged out.
--         in_memory_sessions (sticky, hash(user) % alive servers): the balancer moves most users
--         when the server leaves and again when it comes back: mass logouts.
--         external_session_store: only the requests in flight on the dead server fail; nobody
--         is logged out (sessions live in the store).
-- Part 2: traffic ramps from 200 to 2500 rps (50 busy workers at the end). A fixed fleet of 2
--         small servers and the one big server (32 workers: the biggest box there is) saturate;
--         target-tracking autoscaling adds servers (booting 30 s) to reach the 11 servers that
--         keep them at 60%, paying for servers only when traffic needs them.
local lab = require "hldlab"

local crash = lab.experiment{ name = "horizontal_scaling: a server dies at 10s, back at 15s",
                              seed = 3, duration = "40s" }
crash:workload{ arrivals = lab.constant{ rps = 1000 }, clients = 500,
                service = lab.exponential{ mean = "20ms" } }
crash:add{ lesson = "horizontal_scaling", variant = "one_big_server" }
crash:add{ lesson = "horizontal_scaling", variant = "in_memory_sessions" }
crash:add{ lesson = "horizontal_scaling", variant = "in_memory_sessions", label = "not_sticky",
           params = { sticky = false } }
crash:add{ lesson = "horizontal_scaling", variant = "external_session_store" }
local function victim(sys) return sys.variant == "one_big_server" and 0 or 1 end
crash:at("10s", function(sys) sys:inject("kill_server", { server = victim(sys) }) end)
crash:at("15s", function(sys) sys:inject("restart_server", { server = victim(sys) }) end)
local c = crash:run()
lab.report(c)
lab.expect(c.one_big_server.unavailable == 5000,
           "one big server: all 5000 requests of its 5 s downtime fail")
lab.expect(c.one_big_server.logouts == 500, "and every one of the 500 users is logged out")
lab.expect(c.in_memory_sessions.logouts > 250,
           "in-memory sticky sessions: the balancer's reshuffle logs out most users")
lab.expect(c.not_sticky.logouts >= 1500,
           "in-memory, not sticky: each user logs in again on each of the other 3 servers (and more)")
lab.expect(c.external_session_store.logouts == 0, "session store: nobody is logged out",
           { headline = true })
lab.expect(c.external_session_store.errors == c.external_session_store.lost_in_flight,
           "session store: the only errors are the requests in flight on the dead server")

local ramp = lab.experiment{ name = "horizontal_scaling: traffic ramps 200 -> 2500 rps",
                             seed = 3, duration = "360s" }
ramp:workload{ arrivals = lab.poisson{ rps = 200, ramp = { to = 2500, start = "60s", finish = "240s" } },
               service = lab.exponential{ mean = "20ms" } }
ramp:add{ lesson = "horizontal_scaling", variant = "one_big_server", params = { big_workers = 32 } }
ramp:add{ lesson = "horizontal_scaling", variant = "external_session_store", label = "fixed_2",
          params = { servers = 2 } }
ramp:add{ lesson = "horizontal_scaling", variant = "autoscaling",
          params = { servers = 2, min_servers = 2, target_utilization = 0.6 } }
-- A chaos touch on the autoscaled fleet too: server 0 dies at 240 s (it stays dead).
ramp:at("240s", function(sys)
  if sys.variant == "autoscaling" then sys:inject("kill_server", { server = 0 }) end
end)
local r = ramp:run()
lab.report(r)
lab.expect(r.one_big_server.rejected > 50000, "the one big server hits its vertical limit: 503s")
lab.expect(r.fixed_2.rejected > 50000, "so does the fixed fleet of 2 small servers")
lab.expect(r.autoscaling.rejected * 20 < r.one_big_server.rejected,
           "autoscaling rejects less than 5% of what the big server rejects")
lab.expect(r.autoscaling.throughput > 1.25 * r.one_big_server.throughput,
           "autoscaling serves over 25% more requests per second than the biggest box")
lab.expect(r.autoscaling.p50 < r.one_big_server.p50 / 2, "at less than half its median latency")
lab.expect(r.autoscaling.peak_servers >= 11,
           "autoscaling grows to the 11 servers that 2500 rps needs at 60%")
lab.expect(r.autoscaling.server_seconds < r.autoscaling.peak_servers * 360 * 0.8,
           "and pays for far fewer server-seconds than a fleet sized for the peak all along")
