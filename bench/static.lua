-- The same request again and again (no request() function: wrk sends a
-- request it built once). Usage: wrk -s static.lua URL
package.path = os.getenv("EIDCA_BENCH_DIR") .. "/?.lua;" .. package.path
require("common")
request = nil
