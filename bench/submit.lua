-- wrk script for bench/sustained.py: every connection submits a no-op task
-- (POST /api/v1/tasks) and waits SUBMIT_PERIOD_MS before its next one, so
-- C connections make about C / period submits a second. done() prints the
-- line sustained.py reads.

local PERIOD = tonumber(os.getenv("SUBMIT_PERIOD_MS"))

wrk.method = "POST"
wrk.body = '{"type": "noop", "params": {}}'
wrk.headers["Content-Type"] = "application/json"

function delay()
  return PERIOD
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d p50_us=%d p95_us=%d p99_us=%d max_us=%d "
      .. "connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
