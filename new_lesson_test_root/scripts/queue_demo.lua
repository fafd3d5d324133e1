-- queue_demo: an unbounded queue vs load shedding under a traffic spike.
local lab = require "hldlab"

local exp = lab.experiment{ name = "queue_demo", seed = 1, duration = "60s" }
exp:workload{ arrivals = lab.poisson{ rps = 300, spikes = { { at = "20s", duration = "10s", rps = 600 } } },
              service = "10ms" }
exp:add{ lesson = "queue_demo", variant = "unbounded_queue" }
exp:add{ lesson = "queue_demo", variant = "load_shedding" }
exp:at("40s", function(sys) sys:inject("slowdown", { factor = 1.2 }) end)
local r = exp:run()
lab.report(r)
lab.expect(r.load_shedding.p99 < r.unbounded_queue.p99 / 5, "shedding keeps the P99 bounded")
lab.expect(r.load_shedding.rejected > 0, "by rejecting part of the spike")
