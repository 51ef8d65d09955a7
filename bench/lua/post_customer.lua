-- POST a new customer with a unique email per request.
package.path = package.path .. ";" .. os.getenv("BENCH_LUA") .. "/?.lua"
local common = require("common")
local token = os.getenv("TOKEN")
local counter = 0
thread_tag = "main"  -- replaced per thread by setup()

setup = function(thread)
  thread:set("thread_tag", tostring(math.random(1, 1e9)))
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"first_name": "Bench", "last_name": "Петренко", "email": "bench.%s.%s.%d@example.com", ' ..
    '"phone": "+380 67 123 4567", "status": "lead", "type": "individual"}',
    os.time(), thread_tag, counter)
  return wrk.format("POST", "/api/customers", {
    ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end

done = common.summary
