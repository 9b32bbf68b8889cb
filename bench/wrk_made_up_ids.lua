-- wrk script: an attacker that names a new made-up, well-formed session ID (22 characters of
-- base64url, as the module issues them) on every request.
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

setup = function(thread)
    thread:set("seed", math.random(1, 2 ^ 30))
end

init = function()
    math.randomseed(seed)
end

request = function()
    local id = {}
    for i = 1, 21 do
        local n = math.random(1, 64)
        id[i] = alphabet:sub(n, n)
    end
    -- The last character carries 2 bits: the canonical form has the others zero.
    local n = math.random(0, 3) * 16 + 1
    id[22] = alphabet:sub(n, n)
    return wrk.format("GET", nil, {["Cookie"] = "rhythm_session=" .. table.concat(id)})
end

done = function(summary, latency, requests)
    io.write(string.format("RESULT rps=%.1f requests=%d\n",
        summary.requests / (summary.duration / 1e6), summary.requests))
end
