-- wrk2 script for bench_service's overload step (`--generator wrk2`): POST {"customer_id": ...} with
-- ids rotated over every customer in IDS_FILE, at the rate wrk2's -R sets. Statuses are counted in
-- plain numbers per thread (200, 429, anything else): wrk2 copies a table between threads with its
-- keys and values swapped, numbers it copies as they are. One JSON line at the end.
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
local path = os.getenv("TARGET_PATH") or "/predict"
local threads = {}

function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  counter = offset or 0
  ok, shed, other = 0, 0, 0
end

function request()
  counter = counter + 1
  local id = ids[(counter % #ids) + 1]
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, '{"customer_id":"' .. id .. '"}')
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 429 then shed = shed + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local counts = {ok = 0, shed = 0, other = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(counts) do counts[name] = counts[name] + thread:get(name) end
  end
  io.write(string.format(
    'WRK2 {"requests": %d, "seconds": %.3f, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"timeouts": %d, "socket_errors": %d, "ok": %d, "shed": %d, "other": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.timeout,
    summary.errors.connect + summary.errors.read + summary.errors.write,
    counts.ok, counts.shed, counts.other))
end
