-- Test pages for the integration tests and the demo. They read the session through SessionEnv
-- (HTTP_SESSION) and write it through SessionHeader (X-Replace-Session), as any mod_session
-- application would.

local function session_table(r)
    local t = {}
    local raw = r.subprocess_env["HTTP_SESSION"] or ""
    for k, v in string.gmatch(raw, "([^&=]+)=([^&]*)") do
        t[r:unescape(k)] = r:unescape(v)
    end
    return t, raw
end

-- /app/counter: count this visit in the session.
function counter(r)
    local s, raw = session_table(r)
    local count = tonumber(s["count"] or "0") + 1
    r.headers_out["X-Replace-Session"] = "count=" .. count
    r.content_type = "text/plain"
    r:puts("count=" .. count .. "\n")
    return apache2.OK
end

-- /app/counter-user: counter, and who the session says is logged in (mod_session's `user`, or
-- mod_auth_form's AUTHNAME-user): "count=N user=NAME", NAME empty for nobody.
function counter_user(r)
    local s = session_table(r)
    local user = ""
    for k, v in pairs(s) do
        if k == "user" or string.sub(k, -5) == "-user" then
            user = v
        end
    end
    counter(r)
    r:puts("user=" .. user .. "\n")
    return apache2.OK
end

-- /app/slow?ms=N: like counter, but holds the request (and so the session's lock) N ms first.
function slow(r)
    local args = r:parseargs()
    local ms = tonumber(args["ms"] or "0")
    if ms > 0 then
        r.usleep(ms * 1000)
    end
    return counter(r)
end

-- /app/show: the session as the application sees it.
function show(r)
    local s, raw = session_table(r)
    r.content_type = "text/plain"
    r:puts("session=" .. raw .. "\n")
    return apache2.OK
end

-- /app/set?key=value&...: set keys; an empty value removes the key. ?fill=N sets key "blob" to
-- N bytes.
function set(r)
    local args = r:parseargs()
    local parts = {}
    for k, v in pairs(args) do
        if k == "fill" then
            table.insert(parts, "blob=" .. string.rep("x", tonumber(v)))
        else
            table.insert(parts, r:escape(k) .. "=" .. r:escape(v))
        end
    end
    r.headers_out["X-Replace-Session"] = table.concat(parts, "&")
    r.content_type = "text/plain"
    r:puts("ok\n")
    return apache2.OK
end

-- The demo's page: the visit counter and everything in the session.
function demo(r)
    local s, raw = session_table(r)
    local count = tonumber(s["count"] or "0") + 1
    r.headers_out["X-Replace-Session"] = "count=" .. count
    r.content_type = "text/html"
    r:puts("<!doctype html><title>Rhythm demo</title><h1>Visits in this session: " .. count ..
           "</h1><p>Session data as stored: <code>" .. r:escape_html(raw) .. "</code></p>" ..
           "<p>Served by " .. r:escape_html(r.subprocess_env["RHYTHM_DEMO_SERVER"] or r.server_name) ..
           "</p>")
    return apache2.OK
end
