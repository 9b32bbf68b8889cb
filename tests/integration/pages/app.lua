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

-- The demo's page (build/demo.py): the server that answered, the visit counter, the session's
-- copies in the bank and how to fail the server over. The page's script asks the demo's bank
-- view (RHYTHM_DEMO_BANK) each second what each node holds; the session cookie is HttpOnly, but
-- the browser sends it there too (cookies do not tell the ports of a host apart).
local DEMO_STYLE = [[
body { font-family: sans-serif; max-width: 48em; margin: 2em auto; padding: 0 1em; color: #222 }
h1 { margin-bottom: .2em }
.server { font-size: 1.3em; margin-top: 0 }
table { border-collapse: collapse; margin: .5em 0 }
th, td { padding: .25em 1em .25em 0; border-bottom: 1px solid #ddd; text-align: left }
code, pre { background: #f3f3f3; padding: .1em .3em }
pre { padding: .5em }
.note { color: #555 }
]]

local DEMO_SCRIPT = [[
(function () {
    const view = document.getElementById("bank");
    const summary = document.getElementById("bank-summary");
    const rows = document.querySelector("#bank-nodes tbody");
    const TERM = 4294967296;  // 2^32: a version is term * 2^32 + change (docs/protocol.md)
    const version = (v) => `version ${v} (term ${Math.floor(v / TERM)}, change ${v % TERM})`;
    function holds(copy) {
        switch (copy.state) {
        case "found": return `${version(copy.version)}: ${copy.data}`;
        case "deleted": return `deleted at ${version(copy.version)}`;
        case "error": return copy.error;
        default: return "does not hold it";
        }
    }
    function show(bank) {
        if (!bank.session) {
            summary.textContent = "No session cookie reached the bank view.";
            rows.replaceChildren();
            return;
        }
        const found = bank.nodes.filter((c) => c.state === "found");
        const top = Math.max(...found.map((c) => c.version));
        const holders = found.filter((c) => c.version === top).map((c) => c.name);
        summary.textContent = found.length === 0
            ? "The bank holds no copy of this session yet."
            : `In the bank: ${version(top)}, held by ${holders.join(" and ")} ` +
              `(the bank keeps ${bank.replicas} copies of each session).`;
        rows.replaceChildren(...bank.nodes.map((copy) => {
            const tr = document.createElement("tr");
            for (const text of [copy.name, holds(copy)]) {
                tr.insertCell().textContent = text;
            }
            return tr;
        }));
    }
    async function refresh() {
        try {
            if (!document.hidden) {
                const answer = await fetch(view.dataset.url,
                                           {credentials: "include", cache: "no-store"});
                if (!answer.ok) {
                    throw new Error(`HTTP ${answer.status}`);
                }
                show(await answer.json());
            }
        } catch (e) {
            summary.textContent = `The bank view (${view.dataset.url}) does not answer: ` +
                                  `${e.message}. Is the demo still running?`;
        }
        setTimeout(refresh, 1000);
    }
    refresh();
})();
]]

-- The server's parent PID (its process group: the demo starts each server as a session of its
-- own), from its PidFile; nil when unreadable.
local function demo_parent_pid(r)
    local f = io.open(r.subprocess_env["RHYTHM_DEMO_PIDFILE"] or "", "r")
    if not f then
        return nil
    end
    local pid = f:read("*n")
    f:close()
    return pid
end

function demo(r)
    local s, raw = session_table(r)
    local count = tonumber(s["count"] or "0") + 1
    r.headers_out["X-Replace-Session"] = "count=" .. count
    local server = r:escape_html(r.subprocess_env["RHYTHM_DEMO_SERVER"] or r.server_name)
    local bank = r:escape_html(r.subprocess_env["RHYTHM_DEMO_BANK"] or "")
    local pid = demo_parent_pid(r)
    local found = "This request started the session"
    if raw ~= "" then
        found = "This request found the session <code>" .. r:escape_html(raw) .. "</code>"
    end
    local kill = "kill -9 -- -PID    # the PID the demo printed"
    if pid then
        server = server .. " (httpd pid " .. pid .. ")"
        kill = "kill -9 -- -" .. pid
    end
    r.content_type = "text/html; charset=utf-8"
    r:puts("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           "<title>Rhythm demo</title><style>", DEMO_STYLE, "</style></head><body>\n",
           "<h1>Visits in this session: ", count, "</h1>\n",
           "<p class=\"server\">Served by ", server, "</p>\n",
           "<p>", found, " and stored <code>count=", count, "</code>.</p>\n",
           "<section id=\"bank\" data-url=\"", bank, "\">\n",
           "<h2>Your session in the bank</h2>\n",
           "<p id=\"bank-summary\">Asking the bank...</p>\n",
           "<table id=\"bank-nodes\"><thead><tr><th>node</th><th>holds</th></tr></thead>",
           "<tbody></tbody></table>\n",
           "<p class=\"note\">The version counts the changes of the session: each visit makes the ",
           "next one, and a server that takes the session over from the bank starts a new term. ",
           "The server answers first and writes the copy to the bank behind the request ",
           "(write-behind), so for a moment the bank may still hold the version before this ",
           "visit; this part refreshes every second.</p>\n",
           "<noscript><p>Without JavaScript this page cannot show the bank.</p></noscript>\n",
           "</section>\n",
           "<h2>Fail the server over</h2>\n",
           "<p>Kill the server that answered, parent and children at once:</p>\n",
           "<pre id=\"kill\">", kill, "</pre>\n",
           "<p>then reload this page: HAProxy sends you to the other server, which fetches the ",
           "session from the bank, and the count carries on.</p>\n",
           "<script>", DEMO_SCRIPT, "</script></body></html>\n")
    return apache2.OK
end
