-- A tiny experiment used by the CLI tests.
local lab = require "hldlab"
local exp = lab.experiment{ name = "tiny", seed = 1, duration = "2s" }
exp:workload{ arrivals = lab.poisson{ rps = 100 }, service = "5ms" }
exp:add{ lesson = "load_balancing", variant = "round_robin", params = { backends = 2 } }
lab.report(exp:run())
