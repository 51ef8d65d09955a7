-- GET PATH_TEMPLATE, its {id} replaced by a random line of IDS_FILE and its {q} by one of QUERIES_FILE, per request.
package.path = package.path .. ";" .. os.getenv("BENCH_LUA") .. "/?.lua"
local common = require("common")
local ids = common.read_lines(os.getenv("IDS_FILE") or "")
local template = os.getenv("PATH_TEMPLATE")
local token = os.getenv("TOKEN")
local headers = token and { ["Authorization"] = "Bearer " .. token } or {}
local queries = common.read_lines(os.getenv("QUERIES_FILE") or "")

request = function()
  local path = template
  if #ids > 0 then path = path:gsub("{id}", ids[math.random(#ids)]) end
  -- Queries arrive percent-encoded; "%" is special in a gsub replacement, so double it.
  if #queries > 0 then path = path:gsub("{q}", (queries[math.random(#queries)]:gsub("%%", "%%%%"))) end
  return wrk.format("GET", path, headers)
end

done = common.summary
