-- A paced probe for latency, not throughput: one request at a time on one
-- connection, then a pause of PROBE_INTERVAL_MS (default 5), so that the
-- probe itself adds almost no load. Usage:
--   wrk -t1 -c1 -d10s -s probe.lua URL [-- BEARER_TOKEN]
package.path = os.getenv("EIDCA_BENCH_DIR") .. "/?.lua;" .. package.path
require("common")
request = nil

local interval = tonumber(os.getenv("PROBE_INTERVAL_MS") or "5")

function init(args)
   if args[1] then
      wrk.headers["Authorization"] = "Bearer " .. args[1]
   end
end

function delay()
   return interval
end
