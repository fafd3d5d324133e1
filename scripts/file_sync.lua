-- File sync of real bytes: 4 users each hold the same 8 files of 128 KiB (random bytes). 40
-- syncs/s for 10 s: each edits one file of one user (insert, delete or overwrite of 1..64 bytes
-- at a random offset), then the client chunks and hashes the file and uploads what the
-- deduplicating store lacks, over 10 Mbit/s with a 50 ms RTT. The same edits, so the same bytes,
-- for every variant:
--   whole_file    upload the whole file on every change
--   fixed_blocks  4 KiB blocks: an insertion or deletion shifts every later block
--   cdc           content-defined chunks of 4 KiB on average (Gear rolling hash)
local lab = require "hldlab"

local exp = lab.experiment{ name = "file_sync: whole file vs fixed blocks vs content-defined chunks",
                            seed = 42, duration = "10s" }
exp:workload{ arrivals = lab.poisson{ rps = 40 }, keys = lab.uniform{ n = 32 } }
local variants = { "whole_file", "fixed_blocks", "cdc" }
for _, v in ipairs(variants) do
  exp:add{ lesson = "file_sync", variant = v }
end
local r = exp:run()
lab.report(r)

local whole, fixed, cdc = r.whole_file, r.fixed_blocks, r.cdc
lab.expect(whole.bytes_per_sync > 10 * cdc.bytes_per_sync and
           fixed.bytes_per_sync > 5 * cdc.bytes_per_sync,
           "after a small edit CDC sends 10x less than the whole file and 5x less than fixed blocks",
           { headline = true })
lab.expect(cdc.chunks_per_sync < 2.5,
           "an edit costs content-defined chunking about one or two new chunks (under 2.5 on average)")
-- The syncs re-chunk the same 8 x 128 KiB of content: about 256 independent chunks, whose
-- lengths (1 KiB + a geometric wait of mean 3 KiB) have a standard deviation of 3 KiB: the
-- mean is known to 3072 / 16 = 4.7 %. 20 % is 4.3 standard errors (the tests check 5 % on
-- 16 MiB).
lab.expect(cdc.chunk_mean > 4096 * 0.8 and cdc.chunk_mean < 4096 * 1.2,
           "the mean chunk size is the 4 KiB target within 20 %")
lab.expect(cdc.dedup_ratio > whole.dedup_ratio * 1.5 and cdc.dedup_ratio > fixed.dedup_ratio,
           "the deduplicating store holds every version most compactly with CDC")
lab.expect(cdc.mean < fixed.mean and fixed.mean < whole.mean,
           "and syncs end soonest: less to upload over the same link")
for _, v in ipairs(variants) do
  lab.check(r[v].completed == r[v].requests, v .. ": every sync ends, exactly once")
  lab.check(r[v].logical_bytes == whole.logical_bytes, v .. ": the same file versions")
end
