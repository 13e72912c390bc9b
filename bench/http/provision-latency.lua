-- wrk script: POST /api/v1/provision with a new device name on every request (as provision.lua), and at the end the
-- latency percentiles p50/p99/p99.9 in microseconds on one line for the bench to read.
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("prefix", (os.getenv("RUN_ID") or "run") .. "-t" .. threads .. "-")
end

function request()
  counter = counter + 1
  local body = '{"deviceName":"bench-' .. prefix .. counter .. '","provisionDeviceKey":"bench-key","provisionDeviceSecret":"bench-secret"}'
  return wrk.format("POST", "/api/v1/provision", { ["Content-Type"] = "application/json" }, body)
end

function done(summary, latency, requests)
  io.write(string.format("PERCENTILES %d %d %d %d\n", latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
