-- wrk script for bench/polling_load.py: every connection is one browser whose
-- htmx polls the status fragment every POLL_PERIOD_MS (hx-trigger="every 2s").
-- wrk calls delay() before each request. Like a browser, a connection sends
-- its first request at once; its second waits a random part of a period, so
-- from then on the browsers poll out of step, as ones opened at different
-- times do. Like a browser's cache, each thread sends back the ETag it was
-- last given (If-None-Match), so an unchanged fragment is a 304.
-- wrk_result.lua prints the line it reads.

local PERIOD = tonumber(os.getenv("POLL_PERIOD_MS"))
local CONNECTIONS = tonumber(os.getenv("POLL_CONNECTIONS_PER_THREAD"))
local waits = 0
local etag = nil

wrk.headers["HX-Request"] = "true"

function request()
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  if etag then headers["If-None-Match"] = etag end
  return wrk.format(nil, nil, headers)
end

function response(status, headers, body)
  if headers["ETag"] then etag = headers["ETag"] end
end

function delay()
  waits = waits + 1
  if PERIOD == 0 or waits <= CONNECTIONS then
    return 0
  elseif waits <= 2 * CONNECTIONS then
    return math.random(0, PERIOD)
  end
  return PERIOD
end

-- The RESULT line, shared with the other wrk scripts.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_result.lua")
