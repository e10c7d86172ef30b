-- events.lua — wrk script for POST /events/batch: every request is a distinct
-- "Batch Job State Change" event (a new id, so dedup is exercised and never
-- short-circuits) for one of BENCH_JOBS jobs (batch ids bench-1..N), status
-- RUNNING, so after a job's first event the rest are recorded as stale.
local secret = os.getenv("BENCH_CALLBACK_SECRET")
local jobs = tonumber(os.getenv("BENCH_JOBS") or "1000")
if secret == nil or secret == "" then
  error("BENCH_CALLBACK_SECRET is not set")
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Callback-Key"] = secret

local threads = {}
counter = 0
tid = 0 -- a global: setup() gives each thread its own via thread:set

function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  first_bad = nil
  math.randomseed(os.time() + tid * 7919)
end

function request()
  counter = counter + 1
  local job = math.random(1, jobs)
  local body = string.format(
    '{"version":"0","id":"ev-%d-%d-%d","detail-type":"Batch Job State Change",' ..
    '"source":"aws.batch","detail":{"jobId":"bench-%d","jobName":"bench","status":"RUNNING",' ..
    '"attempts":[],"createdAt":1764360100000,"startedAt":1764360105000,"container":{}}}',
    os.time(), tid, counter, job)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 then
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
