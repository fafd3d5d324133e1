local lab = require "hldlab"
print(pcall(lab.experiment, { duration = -1 }))
print(pcall(lab.report, {}))
print(pcall(function() return undefined_global end))
local e = lab.experiment{}
print(pcall(e.run, e))
print(pcall(e.workload, e, { arrivals = lab.closed{ clients = 0 } }))
