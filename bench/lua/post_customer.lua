-- POST a new customer with a unique email per request, tagged with RUN_TAG so that the bench
-- can find the rows this run stored. Each thread writes the email of every 201 answer to
-- CREATED_DIR/<thread>.txt, for the bench to check that each of them is stored exactly once.
package.path = package.path .. ";" .. os.getenv("BENCH_LUA") .. "/?.lua"
local common = require("common")
local token = os.getenv("TOKEN")
local run_tag = os.getenv("RUN_TAG") or tostring(os.time())
local created_dir = os.getenv("CREATED_DIR")
local counter = 0
local threads = {}
local created_file = nil
created = 0
thread_tag = "main"  -- replaced per thread by setup()

setup = function(thread)
  thread:set("thread_tag", tostring(#threads + 1))
  threads[#threads + 1] = thread
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"first_name": "Bench", "last_name": "Петренко", "email": "bench.%s.%s.%d@example.com", ' ..
    '"phone": "+380 67 123 4567", "status": "lead", "type": "individual"}',
    run_tag, thread_tag, counter)
  return wrk.format("POST", "/api/customers", {
    ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end

response = function(status, headers, body)
  if status ~= 201 then return end
  created = created + 1
  if created_dir == nil or created_dir == "" then return end
  if created_file == nil then created_file = io.open(created_dir .. "/" .. thread_tag .. ".txt", "a") end
  -- Flushed at once: wrk ends without closing its threads' files.
  created_file:write((body:match('"email"%s*:%s*"([^"]+)"') or "?") .. "\n")
  created_file:flush()
end

done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("created") end
  common.summary(summary, latency, requests, total)
end
