-- wrk script for bench/sustained.py: every connection submits a no-op task
-- (POST /api/v1/tasks) and waits SUBMIT_PERIOD_MS before its next one, so
-- C connections make about C / period submits a second; wrk_result.lua prints
-- the line it reads.

local PERIOD = tonumber(os.getenv("SUBMIT_PERIOD_MS"))

wrk.method = "POST"
wrk.body = '{"type": "noop", "params": {}}'
wrk.headers["Content-Type"] = "application/json"

function delay()
  return PERIOD
end

-- The RESULT line, shared with the other wrk scripts.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_result.lua")
