"""The local demo: HAProxy on 127.0.0.1 in front of two httpd servers with mod_rhythm_session,
backed up to a bank of three rss_nodes that keep two copies of each session, and a page that
counts visits in the session and shows the session's copies in the bank. Started by build/demo;
Ctrl-C stops everything it started."""

import http.server
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

TOP = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("RHYTHM_BUILD_DIR", TOP / "_build"))
sys.path.insert(0, str(TOP / "tests" / "integration"))
os.environ.setdefault("RHYTHM_MODULE", str(BUILD / "mod_rhythm_session" / "mod_rhythm_session.so"))
os.environ.setdefault("RHYTHM_BUILD_DIR", str(BUILD))

from balancer_fixture import Haproxy  # noqa: E402
from rhythm_httpd import COOKIE, backed_server, wait_for  # noqa: E402
from rss_node_fixture import RssNode, binary_path  # noqa: E402

NODES = ("bank-1", "bank-2", "bank-3")
REPLICAS = 2

SITE = """
SetEnv RHYTHM_DEMO_SERVER {name}
SetEnv RHYTHM_DEMO_PIDFILE {dir}/httpd.pid
SetEnv RHYTHM_DEMO_BANK {bank}
<Location /app>
    Session On
    SessionMaxAge 1800
    SessionEnv On
    SessionHeader X-Replace-Session
    RhythmSession On
</Location>
"""

# A session ID as its cookie carries it: 22 characters of base64url, the last one carrying 2 bits
# (a signed cookie's ".TAG" is cut off before the match).
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{21}[AQgw]")
LOOKUPS_AT_ONCE = 4  # each runs `rss_node get` against every node at once
DATA_SHOWN = 200  # characters of a copy's data in the answer


def session_id_in(cookie_headers):
    """The session ID of the first well-formed session cookie in the Cookie headers, or None."""
    for header in cookie_headers:
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                session_id = value.split(".", 1)[0]
                if SESSION_ID.fullmatch(session_id):
                    return session_id
    return None


def copy_on(node, proc):
    """What `proc` (`rss_node get` against `node`) says the node holds of the session."""
    try:
        out, err = proc.communicate(timeout=5)  # the command itself gives up after 3 s
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"name": node.name, "state": "error", "error": "no answer in 5 s"}
    if proc.returncode == 2:  # no answer in 3 s, or an error answer: the command says which
        return {"name": node.name, "state": "error",
                "error": err.strip().removeprefix("rss_node: ")[:DATA_SHOWN]}
    fields, _, data = out.partition("\n\n")
    held = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line)
    copy = {"name": node.name, "state": held.get("state", "not-found")}
    if "version" in held:
        copy["version"] = int(held["version"])
    if copy["state"] == "found":
        copy["data"] = data.removesuffix("\n")[:DATA_SHOWN]
    return copy


class BankView(http.server.ThreadingHTTPServer):
    """GET /bank: what each node of the bank holds of the session whose cookie the request
    carries (the session cookie is sent to any port of 127.0.0.1), as JSON, for the demo page's
    script. Read-only, and bounded: a well-formed ID only, `rss_node get` with no shell, at most
    LOOKUPS_AT_ONCE lookups at a time."""

    def __init__(self, nodes):
        super().__init__(("127.0.0.1", 0), BankViewHandler)
        self.nodes = nodes
        self.origins = set()  # the pages allowed to read the answers (CORS)
        self.lookups = threading.BoundedSemaphore(LOOKUPS_AT_ONCE)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/bank"

    def copies(self, session_id):
        procs = [subprocess.Popen([binary_path(), "get", n.queries, session_id],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  errors="replace") for n in self.nodes]
        return [copy_on(n, p) for n, p in zip(self.nodes, procs)]

    def handle_error(self, request, client_address):
        # A page closed while its lookup waited on a dead node is no error to print.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class BankViewHandler(http.server.BaseHTTPRequestHandler):
    timeout = 5  # a client that sends nothing holds its thread no longer

    def do_GET(self):
        if self.path.split("?", 1)[0] != "/bank":
            self.answer(404, {"error": "not found"})
        elif not self.server.lookups.acquire(blocking=False):
            self.answer(503, {"error": "busy"})
        else:
            try:
                session_id = session_id_in(self.headers.get_all("Cookie") or [])
                nodes = self.server.copies(session_id) if session_id else []
            finally:
                self.server.lookups.release()
            self.answer(200, {"session": session_id is not None, "replicas": REPLICAS,
                              "nodes": nodes})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        origin = self.headers.get("Origin")
        if origin in self.server.origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
        self.send_header("Vary", "Origin")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass  # the terminal is for the demo's instructions


def start_bank(started):
    """Three nodes that know each other, once each sees the others and has decided what it
    owns (a visit before that would wait for the bank)."""
    nodes = [RssNode(name, extra=["--replicas", str(REPLICAS)]) for name in NODES]
    for n in nodes:
        n.peers = [o.queries for o in nodes if o is not n]
    for n in nodes:
        started.append(n)
        n.start()

    def decided(node):
        status = node.status()
        up = [m for m in status["members"] if m["state"] == "up"]
        return status["ownership_decided"] and len(up) == len(nodes)
    for n in nodes:
        wait_for(lambda: decided(n), 10, f"{n.name} to see the bank")
    return nodes


def main():
    started = []
    view = None
    # SIGTERM stops the demo like Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        nodes = start_bank(started)
        view = BankView(nodes)
        threading.Thread(target=view.serve_forever, daemon=True).start()
        servers = []
        for name in ("web1", "web2"):
            site = SITE.replace("{name}", name).replace("{bank}", view.url)
            servers.append(backed_server(name, nodes, site=site, modules=["env"]))
            started.append(servers[-1])
            servers[-1].start()
        for s in servers:
            wait_for(lambda: s.status()["RhythmBackupNodesUp"] == len(nodes), 10,
                     f"{s.name} to reach the bank")
        lb = Haproxy(servers)
        view.origins = {lb.url} | {s.url for s in servers}
        started.append(lb)
        lb.start()
        lb.wait_all_up(10)
        kills = "\n".join(f"    kill -9 -- -{s.pid}    # {s.name}" for s in servers)
        bank = ", ".join(f"{n.name} (pid {n.pid})" for n in nodes[:-1])
        bank += f" and {nodes[-1].name} (pid {nodes[-1].pid})"
        web1, web2 = servers
        print(f"""
Rhythm demo running: HAProxy (pid {lb.pid}) in front of web1 (pid {web1.pid}) and web2
(pid {web2.pid}), both backed up to a bank of {len(nodes)} rss_nodes that keep {REPLICAS} copies
of each session: {bank}.

  Visit counter:  {lb.url}/app/demo
  server-status:  {web1.url}/server-status  and  {web2.url}/server-status
  the bank:       {view.url} (what each node holds of your session, as the page shows it)

The page names the server that answered, counts your visits, and shows your session's version
in the bank and the nodes that hold it. Watch a failover: reload the page a few times, then kill
the server that answered, parent and children at once (the page shows the command):
{kills}
and reload: the other server fetches the session from the bank and the count carries on.
Kill a node that holds the session (kill -9 PID): seconds later the page shows a new copy on
the node that held none.
Press Ctrl-C to stop everything.
""", flush=True)
        # The web servers and all but one node may die (that is the point); the demo lasts
        # while its balancer and a node of its bank do.
        while any(n.proc.poll() is None for n in nodes) and lb.proc.poll() is None:
            time.sleep(0.5)
        print("every rss_node or HAProxy exited: stopping")
    except KeyboardInterrupt:
        pass
    finally:
        if view is not None:
            view.shutdown()
            view.server_close()
        for thing in reversed(started):
            thing.cleanup()
        print("demo stopped")


if __name__ == "__main__":
    main()
