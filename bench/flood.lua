-- A flood of POSTs round robin (as post.lua) that also counts the answers
-- that are the bare tryLater OCSPResponse (HTTP 200, so not errors to
-- wrk): done() adds a line "TRYLATER <count>".
package.path = os.getenv("EIDCA_BENCH_DIR") .. "/?.lua;" .. package.path
dofile(os.getenv("EIDCA_BENCH_DIR") .. "/post.lua")

local TRY_LATER = "\48\3\10\1\3"
local threads = {}
try_later = 0

function setup(thread)
   table.insert(threads, thread)
end

function response(status, headers, body)
   if body == TRY_LATER then
      try_later = try_later + 1
   end
end

local result = done
function done(summary, latency, requests)
   result(summary, latency, requests)
   local n = 0
   for _, thread in ipairs(threads) do
      n = n + thread:get("try_later")
   end
   io.write(string.format("TRYLATER %d\n", n))
end
