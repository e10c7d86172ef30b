-- wrk.lua — the wrk script of every run, with the bench API key
-- (BENCH_API_KEY). With BENCH_BODY set it POSTs that JSON body (POST /jobs);
-- without, it GETs the URL wrk is given (GET /jobs/{id} and the bare handler,
-- which then receive the same bytes). Every response that is not 2xx is
-- counted; done() prints one "bench:" line that bench/run.sh checks.
local key = os.getenv("BENCH_API_KEY")
if key == nil or key == "" then
  error("BENCH_API_KEY is not set")
end

local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
else
  wrk.method = "GET"
end
wrk.headers["Authorization"] = "Bearer " .. key

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  first_bad = nil
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
