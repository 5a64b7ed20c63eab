-- GET requests round robin; args: a file with one URL path a line.
package.path = os.getenv("EIDCA_BENCH_DIR") .. "/?.lua;" .. package.path
require("common")

function init(args)
   local list = {}
   for path in io.lines(args[1]) do
      list[#list + 1] = wrk.format("GET", path)
   end
   round_robin(list)
end
