-- wrk script: one session per connection. Run with as many threads as connections, so that
-- each thread's state is one connection's: it keeps the cookie the server last set, like a
-- browser, and remembers the last count the page reported.
local cookie = nil
last_count = 0
bad_status = 0

request = function()
    local headers = {}
    if cookie then
        headers["Cookie"] = cookie
    end
    return wrk.format("GET", nil, headers)
end

response = function(status, headers, body)
    local set = headers["Set-Cookie"]
    if set then
        cookie = string.match(set, "^([^;]+)")
    end
    if status ~= 200 then
        bad_status = bad_status + 1
    end
    local n = string.match(body, "count=(%d+)")
    if n then
        last_count = tonumber(n)
    end
end

local threads = {}
setup = function(thread)
    table.insert(threads, thread)
end

done = function(summary, latency, requests)
    local counts, bad = 0, 0
    for _, t in ipairs(threads) do
        counts = counts + t:get("last_count")
        bad = bad + t:get("bad_status")
    end
    io.write(string.format("RESULT rps=%.1f p99_us=%d p50_us=%d requests=%d errors=%d " ..
                           "non200=%d counted=%d\n",
        summary.requests / (summary.duration / 1e6), latency:percentile(99),
        latency:percentile(50), summary.requests,
        summary.errors.connect + summary.errors.read + summary.errors.write +
        summary.errors.timeout, bad, counts))
end
