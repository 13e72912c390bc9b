-- wrk script: POST /api/v1/provision with a new device name on every request.
-- Names are RUN_ID (env) + thread number + counter, so they stay unique across threads and runs.
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
