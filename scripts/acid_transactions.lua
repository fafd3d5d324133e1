-- ACID transactions: four isolation levels on identical traffic, three workloads. Every
-- transaction's reads and writes are recorded (history = true) and lab.check_transactions
-- builds the dependency graph (ww, wr, rw edges between committed transactions, as Elle does)
-- and classifies its cycles: G0 (dirty write), G1a (aborted read), G1b (intermediate read),
-- G1c (circular information flow), G-single (one anti-dependency: lost update, read skew),
-- G2 (several: write skew). The lesson counts its invariants on its own; both must agree.
--
-- Each transaction does one read or write per millisecond; 400 transactions a second arrive
-- (Poisson), so about 1.5 run at once. 5% are rolled back by their client (the same ones at
-- every level: common random numbers). Sizes from theory: at 400/s a transaction overlaps on
-- average 400 * 0.003 ~ 1.2 others; on 4 counters (counters) or 5 shifts (doctors) the chance
-- that an overlapping one touches the same key is 1/4 or 1/5, so each 4 s run has hundreds of
-- conflicting pairs: every anomaly a level allows shows up on any seed, and a level that
-- forbids one shows exactly zero.
local lab = require "hldlab"

local levels = { "read_uncommitted", "read_committed", "snapshot_isolation", "serializable" }

local function run(workload, params)
  local exp = lab.experiment{ name = "acid_transactions: " .. workload, seed = 42, duration = "4s" }
  exp:workload{ arrivals = lab.poisson{ rps = 400 }, keys = lab.uniform{ n = 1 }, service = "1ms" }
  params.workload = workload
  local systems = {}
  for _, level in ipairs(levels) do
    systems[level] = exp:add{ lesson = "acid_transactions", variant = level, params = params,
                              history = true }
  end
  local r = exp:run()
  lab.report(r)
  local checked = {}
  for _, level in ipairs(levels) do checked[level] = lab.check_transactions(systems[level]) end
  return r, checked
end

local function g1(c)
  return c.anomalies.G1a + c.anomalies.G1b + c.anomalies.G1c
end

-- Counters: increment = read c, write c + 1.
local r, c = run("counters", {})
lab.expect(r.read_committed.lost_updates > 0 and
           c.read_committed.anomalies["G-single"] == r.read_committed.lost_updates,
           "read committed loses updates: the lesson's count equals the checker's G-single cycles",
           { headline = true })
lab.expect(r.snapshot_isolation.lost_updates == 0 and c.snapshot_isolation.valid and
           r.serializable.lost_updates == 0 and c.serializable.valid,
           "snapshot isolation and serializable lose no update (checker: no anomaly)")
lab.expect(r.snapshot_isolation.aborted > r.read_committed.aborted,
           "snapshot isolation pays with aborts (first committer wins)")

-- Bank: transfers between 8 accounts and audits of the total.
r, c = run("bank", {})
lab.expect(c.read_uncommitted.anomalies.G1a > 0 and r.read_uncommitted.audit_mismatches > 0,
           "read uncommitted: audits read rolled-back transfers (G1a) and see a wrong total")
lab.expect(g1(c.read_committed) == 0 and c.read_committed.anomalies["G-single"] > 0 and
           r.read_committed.audit_mismatches > 0,
           "read committed: no dirty read, but read skew (G-single): audits still see wrong totals")
lab.expect(r.snapshot_isolation.audit_mismatches == 0 and r.serializable.audit_mismatches == 0 and
           r.snapshot_isolation.total_drift == 0 and r.serializable.total_drift == 0,
           "snapshot isolation and serializable: every audit sees the total, no money appears or vanishes")
lab.expect(c.serializable.valid, "serializable: the checker finds no anomaly")
for _, level in ipairs(levels) do
  lab.check(c[level].anomalies.G0 == 0, level .. ": writes lock their key: no dirty write (G0)")
end

-- Doctors on call: 5 shifts of two doctors; going off call needs the other one on call.
r, c = run("doctors", { shifts = 5 })
lab.expect(r.snapshot_isolation.nobody_on_call > 0 and c.snapshot_isolation.anomalies.G2 > 0 and
           c.snapshot_isolation.anomalies["G-single"] == 0 and g1(c.snapshot_isolation) == 0,
           "snapshot isolation allows write skew (G2 only): shifts left with nobody on call")
lab.expect(r.serializable.nobody_on_call == 0 and c.serializable.valid,
           "serializable: somebody is always on call, and the checker finds no anomaly")
lab.expect(r.serializable.blocked_ms > 0 and r.snapshot_isolation.blocked_ms == 0,
           "serializable (two-phase locking) makes transactions wait for locks")
