-- wrk script for bench/bench_api.py and bench/bench_security.py: GET /households/{id}, a
-- random existing ID per request.
--   wrk -t1 -c32 -d20s --latency -s bench/api_get.lua http://127.0.0.1:PORT -- IDS_FILE [TOKEN]
-- IDS_FILE holds one household registry ID a line; TOKEN, a file holding an access token sent
-- as `Authorization: Bearer <token>` on every request. Responses outside 2xx are counted and
-- reported on a line "NON2XX <count> <last status>" at the end.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local ids = {}

local function read_token(path)
  local file = assert(io.open(path, "r"))
  local token = file:read("*l")
  file:close()
  return token
end

function init(args)
  for line in io.lines(args[1]) do
    ids[#ids + 1] = line
  end
  if args[2] then
    wrk.headers["Authorization"] = "Bearer " .. read_token(args[2])
  end
  math.randomseed(os.time() * 100 + tid)
  non2xx = 0
  last_status = 0
  last_body = ""
end

function request()
  return wrk.format("GET", "/households/" .. ids[math.random(#ids)])
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    last_status = status
    last_body = string.sub(body or "", 1, 300)
  end
end

function done(summary, latency, requests)
  local total, status, body = 0, 0, ""
  for _, thread in ipairs(threads) do
    total = total + thread:get("non2xx")
    if thread:get("last_status") ~= 0 then
      status, body = thread:get("last_status"), thread:get("last_body")
    end
  end
  io.write(string.format("NON2XX %d %d\n", total, status))
  if total > 0 then
    io.write("LAST_NON2XX_BODY " .. body .. "\n")
  end
end
