-- RPC encoding and transport: JSON over HTTP/1.1 against binary over HTTP/2 and HTTP/3.
--
-- Part 1: the plugin encodes a small message (an id, a price, a flag) and an order with 20
--         items, as JSON and in the protobuf wire format (field tags, varints), and decodes them
--         back. Binary drops the field names and writes numbers in 1-9 bytes.
-- Part 2: a page of 30 orders over a 100 ms, 10 Mbit/s link, 1000 pages per loss rate. The
--         transport model counts rounds of one round trip (see the lesson): HTTP/1.1 spreads the
--         30 requests over 6 connections, one at a time on each (5 rounds); HTTP/2 and /3 send
--         them at once on one connection, limited by its congestion window (slow start from 10
--         packets). Every variant loses the same packets. Without loss: HTTP/1.1 + JSON 500 ms,
--         HTTP/2 + binary 200 ms. Under loss the single connection's window halves for every
--         stream, so HTTP/2 loses more than HTTP/1.1's six windows (the direction reported for
--         HTTP/2 at a few percent loss); TCP's in-order delivery holds back every stream behind a
--         lost packet, QUIC only the stream that lost it, so HTTP/3 delivers resources earlier
--         with the same packets lost.
local lab = require "hldlab"

local sizes_exp = lab.experiment{ name = "rpc encoding: message sizes", seed = 42, duration = "1s" }
sizes_exp:workload{ arrivals = lab.constant{ rps = 1 }, keys = lab.uniform{ n = 1 } }
local any = sizes_exp:add{ lesson = "rpc_encoding", variant = "http2" }
local sizes = any:call("sizes", { items = 20 })
print(string.format("small message: JSON %d bytes, binary %d bytes; order of 20 items: JSON %d, binary %d",
                    sizes.json_small, sizes.binary_small, sizes.json_large, sizes.binary_large))
sizes_exp:run()
lab.check(sizes.round_trip, "every message decodes back to itself in both encodings")
lab.expect(sizes.binary_small * 3 < sizes.json_small and sizes.binary_large * 2 < sizes.json_large,
           string.format("binary is %.0f %% of JSON for the small message, %.0f %% for the order",
                         100 * sizes.binary_small / sizes.json_small, 100 * sizes.binary_large / sizes.json_large))

local systems = {
  { "json_http1", "http1", "json" }, { "json_http2", "http2", "json" }, { "json_http3", "http3", "json" },
  { "binary_http2", "http2", "binary" }, { "binary_http3", "http3", "binary" },
}
local results = {}
for _, loss in ipairs{ 0, 0.01, 0.05 } do
  local exp = lab.experiment{ name = string.format("rpc encoding: page loads, %.0f %% loss", 100 * loss),
                              seed = 42, duration = "20s" }
  exp:workload{ arrivals = lab.poisson{ rps = 50 }, keys = lab.uniform{ n = 10 } }
  for _, s in ipairs(systems) do
    exp:add{ lesson = "rpc_encoding", variant = s[2], label = s[1], params = { encoding = s[3], loss = loss } }
  end
  results[loss] = exp:run()
  lab.report(results[loss])
end
local clean, lossy, heavy = results[0], results[0.01], results[0.05]
lab.expect(clean.binary_http2.p50 < clean.json_http1.p50 / 2,
           string.format("a page: %.0f ms with JSON over HTTP/1.1 -> %.0f ms with binary over HTTP/2",
                         1000 * clean.json_http1.p50, 1000 * clean.binary_http2.p50), { headline = true })
lab.expect(clean.json_http2.p50 < clean.json_http1.p50, "without loss, multiplexing beats 6 connections")
lab.expect(heavy.json_http2.mean > heavy.json_http1.mean,
           string.format("at 5 %% loss one TCP connection is slower than six: %.0f ms against %.0f ms",
                         1000 * heavy.json_http2.mean, 1000 * heavy.json_http1.mean))
lab.expect(lossy.json_http3.resource_time < lossy.json_http2.resource_time
             and heavy.json_http3.resource_time < heavy.json_http2.resource_time
             and clean.json_http3.resource_time == clean.json_http2.resource_time,
           string.format("per-stream recovery: a resource arrives in %.0f ms over HTTP/3, %.0f ms over HTTP/2 at 5 %% loss (equal without loss)",
                         1000 * heavy.json_http3.resource_time, 1000 * heavy.json_http2.resource_time))
lab.expect(heavy.binary_http2.mean < heavy.json_http2.mean,
           "fewer bytes, fewer packets to lose: binary pages load faster under loss too")
