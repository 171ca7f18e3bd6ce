-- Open-loop pacing for wrk, shared by scripts/bench-api and scripts/bench-callplane: each wrk
-- thread hands out send slots `pacing_interval_ms` apart to its connections, whatever a
-- request's latency, so the offered rate does not fall when answers slow down. The script that
-- includes this sets `pacing_interval_ms` before it.
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_usec; } sy_timeval; int gettimeofday(sy_timeval *tv, void *tz); ]]
local tv = ffi.new("sy_timeval")
local function now_ms() ffi.C.gettimeofday(tv, nil); return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000 end
local t0, slots = nil, 0
function delay()
  local t = now_ms()
  if not t0 then t0 = t end
  slots = slots + 1
  return math.max(0, t0 + slots * pacing_interval_ms - t)
end
