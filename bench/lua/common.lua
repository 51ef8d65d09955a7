-- Shared by every bench case: auth header, a list of ids, and a JSON summary on exit.
local M = {}

function M.read_lines(path)
  local lines = {}
  local f = io.open(path, "r")
  if f == nil then return lines end
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  return lines
end

-- `created`: the 201 answers counted by the script's threads (nil when it does not count).
function M.summary(summary, latency, requests, created)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout + summary.errors.status
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "rps": %.1f, "p50_ms": %.2f, "p99_ms": %.2f, ' ..
    '"max_ms": %.2f, "errors": %d, "non2xx": %d, "timeouts": %d, "created": %d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    errors, summary.errors.status, summary.errors.timeout, created or -1))
end

return M
