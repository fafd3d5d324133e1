-- Chat between 2000 users (1000 conversations of two), each online ~20 s then offline ~5 s on
-- average (80 % online). 300 messages/s for 10 s; the conversation is Zipf(1.1), so a few busy
-- conversations get several messages per second. RTT 50 ms, plus an exponential 10 ms jitter on
-- a message's way to the server and on a push's way to the recipient. The same messages, the
-- same churn for every variant:
--   polling             every online client queries the DB every second
--   long_polling        one open request per client, answered when a message comes
--   push                WebSocket push in arrival order; offline recipients lose the message
--   push_store_forward  push + sequence numbers + messages kept for offline users
local lab = require "hldlab"

local exp = lab.experiment{ name = "chat: polling vs long polling vs push vs store-and-forward",
                            seed = 42, duration = "10s" }
exp:workload{ arrivals = lab.poisson{ rps = 300 }, keys = lab.zipf{ n = 1000, s = 1.1 } }
local variants = { "polling", "long_polling", "push", "push_store_forward" }
for _, v in ipairs(variants) do
  exp:add{ lesson = "chat", variant = v }
end
local r = exp:run()
lab.report(r)

local poll, long, push, saf = r.polling, r.long_polling, r.push, r.push_store_forward
lab.expect(poll.db_qps > 3 * saf.db_qps and
           poll.online_delivery_mean > 5 * saf.online_delivery_mean,
           "polling loads the DB 3x more than push with store-and-forward and delivers 5x slower",
           { headline = true })
-- RTT + jitter + interval / 2 = 0.56 s, plus the recipients who go offline before their next poll.
lab.expect(poll.online_delivery_mean > 0.55,
           "polling every second: a message to an online user takes RTT + interval / 2 or more")
lab.expect(long.online_delivery_mean < 0.1 and saf.online_delivery_mean < 0.1,
           "long polling and push deliver to online users in about one RTT (under 100 ms on average)")
lab.expect(push.lost > 0.1 * push.requests and saf.lost == 0 and poll.lost == 0,
           "plain push loses the messages of offline users (over 10 %); store-and-forward none")
lab.expect(push.out_of_order > 0 and saf.out_of_order == 0 and poll.out_of_order == 0 and
           long.out_of_order == 0,
           "pushed in arrival order, messages overtake each other; sequence numbers keep order")
for _, v in ipairs(variants) do
  lab.check(r[v].completed == r[v].requests, v .. ": every message ends, exactly once")
  lab.check(r[v].delivered + r[v].lost == r[v].requests, v .. ": delivered or lost")
end
