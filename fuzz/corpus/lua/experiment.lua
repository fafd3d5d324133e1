local lab = require "hldlab"
local exp = lab.experiment{ name = "fuzz", seed = 3, duration = "1s" }
exp:workload{ arrivals = lab.poisson{ rps = 10 }, keys = lab.zipf{ n = 10, s = 1 }, service = lab.bimodal{ fast = "1ms", slow = "1s", slow_share = 0.1 } }
exp:at("0.5s", function(sys) sys:inject("latency", { delay = "5ms" }) end)
local ok, err = pcall(function() exp:add{ lesson = "x", variant = "y" } end)
print(ok, err, lab.duration("2m"), math.random(1, 6))
lab.expect(true, "fine")
