-- done() for the wrk scripts (poll.lua, submit.lua): one RESULT line that
-- harness.wrk() reads. Loaded with dofile from beside the script.

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d p50_us=%d p95_us=%d p99_us=%d max_us=%d "
      .. "connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
