-- wrk script for Stratix's write workloads: requests are read from $PEER_BODIES (one JSON
-- body per line, as the peer harness's `bench.py bodies` writes them) and picked at random
-- with a fixed seed. A body holding {{unique}} gets a value never sent before on each
-- request ($PEER_NONCE-<n>), so a create never repeats a key. The summary line is the one
-- the harness's `bench.py record-wrk` reads.
local plain, templates = {}, {}
local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
local nonce = os.getenv("PEER_NONCE") or tostring(os.time())
local sent = 0

function init(args)
  local auth = os.getenv("PEER_AUTH")
  if auth and auth ~= "" then headers["Authorization"] = auth end
  local path = assert(os.getenv("PEER_BODIES"), "set PEER_BODIES")
  for body in io.lines(path) do
    if body ~= "" then
      local n = #plain + 1
      if body:find("{{unique}}", 1, true) then
        plain[n], templates[n] = false, body
      else
        plain[n] = wrk.format("POST", wrk.path, headers, body)
      end
    end
  end
  assert(#plain > 0, "no bodies in " .. path)
  math.randomseed(tonumber(os.getenv("PEER_SEED") or "42"))
end

function request()
  local n = math.random(#plain)
  if plain[n] then return plain[n] end
  sent = sent + 1
  local body = templates[n]:gsub("{{unique}}", nonce .. "-" .. sent)
  return wrk.format("POST", wrk.path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  print(string.format('PEER_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,' ..
    '"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
