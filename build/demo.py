"""The local demo: HAProxy on 127.0.0.1 in front of two httpd servers with mod_rhythm_session,
backed up to one rss_node, and a page that counts visits in the session. Started by build/demo;
Ctrl-C stops everything it started."""

import os
import pathlib
import signal
import sys
import time

TOP = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("RHYTHM_BUILD_DIR", TOP / "_build"))
sys.path.insert(0, str(TOP / "tests" / "integration"))
os.environ.setdefault("RHYTHM_MODULE", str(BUILD / "mod_rhythm_session" / "mod_rhythm_session.so"))
os.environ.setdefault("RHYTHM_BUILD_DIR", str(BUILD))

from balancer_fixture import Haproxy  # noqa: E402
from rhythm_httpd import backed_server  # noqa: E402
from rss_node_fixture import RssNode  # noqa: E402

SITE = """
SetEnv RHYTHM_DEMO_SERVER {name}
<Location /app>
    Session On
    SessionMaxAge 1800
    SessionEnv On
    SessionHeader X-Replace-Session
    RhythmSession On
</Location>
"""


def main():
    started = []
    # SIGTERM stops the demo like Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        node = RssNode("bank-1").start()
        started.append(node)
        servers = [backed_server(name, [node], site=SITE.replace("{name}", name),
                                 modules=["env"]).start() for name in ("web1", "web2")]
        started.extend(servers)
        lb = Haproxy(servers).start()
        started.append(lb)
        lb.wait_all_up(10)
        kills = "\n".join(f"    kill -9 -- -{s.pid}    # {s.name}" for s in servers)
        print(f"""
Rhythm demo running: HAProxy (pid {lb.pid}) in front of web1 (pid {servers[0].pid}) and
web2 (pid {servers[1].pid}), both backed up to rss_node bank-1 (pid {node.pid}).

  Visit counter:  {lb.url}/app/demo
  server-status:  {servers[0].url}/server-status  and  {servers[1].url}/server-status

Watch a failover: reload the page a few times (it names the server that answered), then kill
that server, parent and children at once:
{kills}
and reload: the other server fetches the session from the bank and the count carries on.
Press Ctrl-C to stop everything.
""", flush=True)
        # The web servers may die (that is the point); the demo lasts while its bank and its
        # balancer do.
        while node.proc.poll() is None and lb.proc.poll() is None:
            time.sleep(0.5)
        print("rss_node or HAProxy exited: stopping")
    except KeyboardInterrupt:
        pass
    finally:
        for thing in reversed(started):
            thing.cleanup()
        print("demo stopped")


if __name__ == "__main__":
    main()
