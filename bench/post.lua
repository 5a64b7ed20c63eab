-- POST requests round robin; args: a file naming one DER OCSP request
-- file a line. The URL's path is the POST target.
package.path = os.getenv("EIDCA_BENCH_DIR") .. "/?.lua;" .. package.path
require("common")

function init(args)
   local list = {}
   local headers = { ["Content-Type"] = "application/ocsp-request" }
   for file in io.lines(args[1]) do
      local f = assert(io.open(file, "rb"))
      list[#list + 1] = wrk.format("POST", wrk.path, headers, f:read("*a"))
      f:close()
   end
   round_robin(list)
end
