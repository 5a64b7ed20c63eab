-- Shared by the wrk scripts of bench/ocsp-load.sh.

-- wrk's default resolver opens (and closes) a probe connection to every
-- address before the test; that idle connection is exactly what makes the
-- OpenSSL 3.0 responder spin. Resolve only.
function wrk.resolve(host, service)
   wrk.addrs = wrk.lookup(host, service)
end

-- One machine-readable line: requests/s, p50 and p99 latency in µs,
-- errors (socket errors plus non-2xx/3xx answers), requests.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("RESULT %.0f %.0f %.0f %d %d\n",
      summary.requests / summary.duration * 1e6,
      latency:percentile(50), latency:percentile(99),
      e.connect + e.read + e.write + e.timeout + e.status,
      summary.requests))
end

-- Pre-formatted requests, served round robin from a random start so that
-- the threads do not walk in step; formatting happens once, in init, so
-- the per-request cost in wrk is one table lookup.
local requests = {}
local next_index = 1

function round_robin(list)
   requests = list
   next_index = math.random(#requests)
end

function request()
   local r = requests[next_index]
   next_index = next_index % #requests + 1
   return r
end
