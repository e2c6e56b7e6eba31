-- wrk script for bench/bench_web.py: GET /web/households/{id}, a random household per request,
-- with a session cookie.
--   wrk -t1 -c16 -d20s --latency -s bench/web_get.lua http://127.0.0.1:PORT -- IDS_FILE COOKIE_FILE
-- Responses outside 2xx are counted and reported on a line "NON2XX <count> <last status>".

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local ids = {}

function init(args)
  for line in io.lines(args[1]) do
    ids[#ids + 1] = line
  end
  local file = assert(io.open(args[2], "r"))
  wrk.headers["Cookie"] = file:read("*l")
  file:close()
  wrk.headers["Accept-Encoding"] = "gzip, deflate, br"
  math.randomseed(os.time() * 100 + tid)
  non2xx = 0
  last_status = 0
end

function request()
  return wrk.format("GET", "/web/households/" .. ids[math.random(#ids)])
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    last_status = status
  end
end

function done(summary, latency, requests)
  local total, status = 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("non2xx")
    if thread:get("last_status") ~= 0 then
      status = thread:get("last_status")
    end
  end
  io.write(string.format("NON2XX %d %d\n", total, status))
end
