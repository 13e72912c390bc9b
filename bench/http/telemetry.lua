-- wrk script: POST telemetry for one of the devices whose tokens are listed in the TOKENS env variable (comma-separated).
-- KEYS=1 sends ThingsBoard's documentation example shape {"temperature":N}; otherwise three values per request.
local tokens = {}
local i = 0
local single = os.getenv("KEYS") == "1"

function init(args)
  for t in string.gmatch(os.getenv("TOKENS") or "", "[^,]+") do table.insert(tokens, t) end
  i = math.random(1, #tokens)
end

function request()
  i = i % #tokens + 1
  local body
  if single then
    body = '{"temperature":' .. (20 + i % 10) .. '}'
  else
    body = '{"temperature":' .. (20 + i % 10) .. ',"humidity":' .. (40 + i % 7) .. ',"on":true}'
  end
  return wrk.format("POST", "/api/v1/" .. tokens[i] .. "/telemetry", { ["Content-Type"] = "application/json" }, body)
end

-- Latency percentiles p50/p99/p99.9 and max in microseconds on one line (bench/http/telemetry-cpu.ts reads it).
function done(summary, latency, requests)
  io.write(string.format("PERCENTILES %d %d %d %d\n", latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
