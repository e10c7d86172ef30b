-- wrk.lua — the wrk script of every run. Three modes, by environment:
--   BENCH_EVENT_JOBS set: POST /events/batch, every request a distinct "Batch
--     Job State Change" event (a new id, so dedup is exercised) for one of
--     that many jobs (batch ids bench-1..N), status RUNNING, with the
--     callback key BENCH_CALLBACK_SECRET;
--   BENCH_BODY set: POST that JSON body (POST /jobs) with BENCH_API_KEY;
--   neither: GET the URL wrk is given (GET /jobs/{id} and the bare handler,
--     which then receive the same bytes) with BENCH_API_KEY.
-- Every response that is not 2xx is counted; done() prints one "bench:"
-- line that bench/bench.py checks.
local event_jobs = tonumber(os.getenv("BENCH_EVENT_JOBS") or "")
local body = os.getenv("BENCH_BODY")
if event_jobs ~= nil then
  local secret = os.getenv("BENCH_CALLBACK_SECRET")
  if secret == nil or secret == "" then
    error("BENCH_CALLBACK_SECRET is not set")
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Callback-Key"] = secret
else
  local key = os.getenv("BENCH_API_KEY")
  if key == nil or key == "" then
    error("BENCH_API_KEY is not set")
  end
  wrk.headers["Authorization"] = "Bearer " .. key
  if body ~= nil and body ~= "" then
    wrk.method = "POST"
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
  else
    wrk.method = "GET"
  end
end

tid = 0 -- globals: setup() gives each thread its own tid through thread:set
counter = 0

if event_jobs ~= nil then
  function request()
    counter = counter + 1
    local ev = string.format(
      '{"version":"0","id":"ev-%d-%d-%d","detail-type":"Batch Job State Change",' ..
      '"source":"aws.batch","detail":{"jobId":"bench-%d","jobName":"bench",' ..
      '"status":"RUNNING","attempts":[],"createdAt":1764360100000,' ..
      '"startedAt":1764360105000,"container":{}}}',
      os.time(), tid, counter, math.random(1, event_jobs))
    return wrk.format(nil, nil, nil, ev)
  end
end

-- BENCH_DELAY_MS set: each connection waits that long between its requests
-- (the half-load runs: a fixed offered rate below the maximum).
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pause ~= nil then
  function delay()
    return pause
  end
end

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  first_bad = nil
  math.randomseed(os.time() + tid * 7919)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
    if first_bad == nil then
      first_bad = status .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local n, first = 0, nil
  for _, t in ipairs(threads) do
    n = n + (t:get("bad") or 0)
    first = first or t:get("first_bad")
  end
  local e = summary.errors
  io.write(string.format("bench: requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, n, e.connect, e.read, e.write, e.timeout))
  if first ~= nil then
    io.write("bench: first failure: " .. first .. "\n")
  end
end
