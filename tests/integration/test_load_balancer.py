"""The load balancer configurations we ship (conf/haproxy/rhythm.cfg and
conf/proxy_balancer/rhythm.conf) in front of two real httpd servers with mod_rhythm_session:
sticky sessions, new browsers spread over both servers, a dead server's users re-routed with no
failed request, and a returning server seen up again by the health checks.

Session failover (the new server fetching the session from the rss_node bank) is not tested
here: these servers run without SessionBackup, so a moved user's counter starts again at 1."""

import base64
import http.client
import re
import subprocess
import time

import pytest

from balancer_fixture import (HAPROXY, HAPROXY_TEMPLATE, PROXY_BALANCER_MODULES,
                              PROXY_BALANCER_TEMPLATE, Haproxy, KeepAlive, ProxyBalancer,
                              backend_site, restart_on_port, served_by)
from rhythm_httpd import Browser, Httpd

BALANCERS = {"haproxy": Haproxy, "proxy_balancer": ProxyBalancer}


@pytest.fixture
def web():
    """Two web servers, web1 and web2, each saying who it is in X-Backend."""
    servers = {}
    try:
        for name in ("web1", "web2"):
            servers[name] = Httpd(backend_site(name), name=name).start()
        yield servers
    finally:
        for s in servers.values():
            s.cleanup()


@pytest.fixture(params=sorted(BALANCERS))
def lb(request, web):
    """Each balancer in turn, started in front of web1 and web2, every backend seen up."""
    balancer = BALANCERS[request.param](list(web.values()))
    try:
        yield balancer.start()
    finally:
        balancer.cleanup()


def count_of(text):
    m = re.search(r"count=(\d+)", text)
    return int(m.group(1)) if m else None


def visit(browser):
    """One counter request: (status, backend that served it, counter)."""
    status, headers, text = browser.get("/app/counter")
    return status, served_by(headers), count_of(text)


def test_shipped_haproxy_config_is_valid_as_it_is():
    """conf/haproxy/rhythm.cfg passes `haproxy -c` unchanged, with its example addresses."""
    p = subprocess.run([HAPROXY, "-c", "-f", str(HAPROXY_TEMPLATE)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_shipped_proxy_balancer_config_is_valid_as_it_is():
    """conf/proxy_balancer/rhythm.conf passes `apache2 -t` unchanged, with its example
    addresses, given the modules its header names."""
    front = Httpd(PROXY_BALANCER_TEMPLATE.read_text(), modules=PROXY_BALANCER_MODULES,
                  name="front-check")
    try:
        rc, out = front.config_test()
        assert rc == 0, out
    finally:
        front.cleanup()


def test_browser_sticks_to_one_backend(lb):
    """Every request of a browser goes to the server that served its first one: its counter
    goes 1, 2, 3... and the sticky cookie names that server."""
    b = Browser(lb)
    status, first, count = visit(b)
    assert (status, count) == (200, 1)
    assert first in ("web1", "web2")
    assert lb.route_of(b.cookies) == first
    for n in range(2, 21):
        assert visit(b) == (200, first, n)


def test_new_browsers_are_spread_over_both_backends(lb):
    """Browsers without a cookie are shared out: the first two land on different servers, and
    20 of them load both servers about evenly. Each then stays where it landed."""
    browsers = [Browser(lb) for _ in range(20)]
    landed = [visit(b) for b in browsers]
    assert all(status == 200 and count == 1 for status, _, count in landed)
    where = [backend for _, backend, _ in landed]
    assert where[0] != where[1]
    assert 7 <= where.count("web1") <= 13, where
    for b, backend in zip(browsers, where):
        assert visit(b) == (200, backend, 2)


def haproxy_redispatches(lb):
    """How many requests HAProxy re-sent to another server than the one first chosen."""
    return sum(int(r["wredis"] or 0) for r in lb.stats()
               if r["pxname"] == "rhythm_web" and r["svname"] == "BACKEND")


def test_dead_backend_users_move_without_a_failed_request(lb, web):
    """A web server dies (parent and children SIGKILLed) while browsers are stuck to it: the
    next request of each of them is answered 200 by the other server (a new session there, the
    counter starts again at 1), also for a browser that keeps its connection to the balancer
    open; each browser sticks to its new server afterwards, and the balancer's health checks
    take the dead server out within a few seconds."""
    browsers = [Browser(lb) for _ in range(8)] + [Browser(KeepAlive(lb)) for _ in range(4)]
    home = {}
    for b in browsers:
        for n in range(1, 4):
            status, backend, count = visit(b)
            assert (status, count) == (200, n)
        home[b] = backend
    victim = home[browsers[0]]
    survivor = "web2" if victim == "web1" else "web1"
    moved = [b for b in browsers if home[b] == victim]
    assert any(isinstance(b.server, KeepAlive) for b in moved)

    died = time.monotonic()
    web[victim].kill()
    # The very next request of every moved browser: refused by the dead server, re-sent to the
    # live one, whether or not the health checks have noticed yet.
    unnoticed = lb.states()[victim]
    for b in moved:
        assert visit(b) == (200, survivor, 1)
        assert lb.route_of(b.cookies) == survivor
    if unnoticed and isinstance(lb, Haproxy):
        # Still UP for the checks when the first request went: it was re-dispatched.
        assert haproxy_redispatches(lb) >= 1
    for b in moved:
        for n in range(2, 5):
            assert visit(b) == (200, survivor, n)
    # Those who were on the survivor never noticed.
    for b in browsers:
        if home[b] == survivor:
            assert visit(b) == (200, survivor, 4)
    # No browser's connection to the balancer was dropped.
    assert all(b.server.connections == 1 for b in browsers if isinstance(b.server, KeepAlive))
    lb.wait_down(victim, timeout=10)
    detected = time.monotonic() - died
    print(f"{lb.kind}: {victim} seen down {detected:.2f}s after it died "
          f"(first moved request sent while it was still seen up: {unnoticed})")
    assert detected < 5
    # New browsers go to the survivor only.
    for _ in range(4):
        assert visit(Browser(lb))[:2] == (200, survivor)
    for b in browsers:
        if isinstance(b.server, KeepAlive):
            b.server.close()


def test_returning_backend_is_seen_up_and_gets_new_browsers(lb, web):
    """A dead server that comes back on its port (a new httpd, empty memory) is seen up by the
    health checks within a few seconds, and new browsers land on it again."""
    web["web1"].kill()
    lb.wait_down("web1", timeout=10)
    back = restart_on_port(backend_site("web1"), web["web1"].port, "web1")
    web["web1"].cleanup()
    web["web1"] = back
    returned = time.monotonic()
    lb.wait_up("web1", timeout=10)
    seen = time.monotonic() - returned
    print(f"{lb.kind}: web1 seen up {seen:.2f}s after it answered again")
    assert seen < 5
    where = [visit(Browser(lb))[1] for _ in range(10)]
    assert "web1" in where and "web2" in where, where


def test_haproxy_stats_page_needs_its_password_and_shows_servers(web):
    """The stats page answers 401 without the configured password, and with it the CSV lists
    both servers UP; the admin socket answers `show stat` as well."""
    with Haproxy(list(web.values())) as lb:
        def get(path, auth=None):
            c = http.client.HTTPConnection("127.0.0.1", lb.stats_port, timeout=10)
            try:
                h = {}
                if auth:
                    h["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
                c.request("GET", path, headers=h)
                r = c.getresponse()
                return r.status, r.read().decode(errors="replace")
            finally:
                c.close()

        assert get("/;csv")[0] == 401
        user, password = lb.stats_auth()
        status, body = get("/;csv", f"{user}:{password}")
        assert status == 200
        rows = [line.split(",") for line in body.splitlines() if line.startswith("rhythm_web,")]
        assert {r[1]: r[17] for r in rows if r[1] in ("web1", "web2")} == {"web1": "UP",
                                                                           "web2": "UP"}
        assert lb.server_status() == {"web1": "UP", "web2": "UP"}
