-- wrk script for bench/bench_api.py and bench/bench_security.py: POST /households, a new
-- household per request.
--   wrk -t1 -c32 -d20s --latency -s bench/api_post.lua http://127.0.0.1:PORT \
--     -- BODIES NIDS NTHREADS [TOKEN]
-- BODIES: one JSON household a line, its members' national ID numbers written __NID0__,
-- __NID1__, ...; NIDS: national ID numbers valid under tr.tckimlik and held by nobody in the
-- registry, one a line, each used once (thread k of n takes every n-th number). Responses
-- outside 2xx are counted and reported on a line "NON2XX <count> <last status>"; "USED <n>"
-- says how many numbers were drawn, "EXHAUSTED <n>" how many requests found none left.
-- NTHREADS: wrk's -t; TOKEN: a file holding an access token, sent as `Authorization: Bearer
-- <token>` on every request.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local bodies, nids = {}, {}
local nthreads, next_nid = 1, 0
local headers = { ["Content-Type"] = "application/json" }

local function read_token(path)
  local file = assert(io.open(path, "r"))
  local token = file:read("*l")
  file:close()
  return token
end

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  for line in io.lines(args[2]) do
    nids[#nids + 1] = line
  end
  nthreads = tonumber(args[3]) or 1
  if args[4] then
    headers["Authorization"] = "Bearer " .. read_token(args[4])
  end
  next_nid = tid - 1
  math.randomseed(os.time() * 100 + tid)
  non2xx = 0
  used = 0
  exhausted = 0
  last_status = 0
  last_body = ""
end

local function take()
  local nid = nids[next_nid + 1]
  next_nid = next_nid + nthreads
  used = used + 1
  return nid
end

function request()
  local body = bodies[math.random(#bodies)]
  local k = 0
  while string.find(body, "__NID" .. k .. "__", 1, true) do
    local nid = take()
    if nid == nil then
      exhausted = exhausted + 1
      nid = "00000000000"
    end
    body = string.gsub(body, "__NID" .. k .. "__", nid, 1)
    k = k + 1
  end
  return wrk.format("POST", "/households", headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    last_status = status
    last_body = string.sub(body or "", 1, 300)
  end
end

function done(summary, latency, requests)
  local total, status, body, drawn, none = 0, 0, "", 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("non2xx")
    drawn = drawn + thread:get("used")
    none = none + thread:get("exhausted")
    if thread:get("last_status") ~= 0 then
      status, body = thread:get("last_status"), thread:get("last_body")
    end
  end
  io.write(string.format("NON2XX %d %d\n", total, status))
  io.write(string.format("USED %d\n", drawn))
  io.write(string.format("EXHAUSTED %d\n", none))
  if total > 0 then
    io.write("LAST_NON2XX_BODY " .. body .. "\n")
  end
end
