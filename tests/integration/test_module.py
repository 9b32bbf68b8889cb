"""mod_rhythm_session against the real apache2: the cookie round trip, concurrency under each
MPM, restarts, bad cookies, oversized sessions, expiry, eviction, lock timeouts, killed workers,
and bad directive values."""

import concurrent.futures
import http.client
import os
import re
import signal
import ssl
import time

import pytest

from rhythm_httpd import COOKIE, Browser, Httpd, app_location, wait_for


def app_server(extra="", server_wide="", mpm="event", **kw):
    return Httpd(app_location(extra), server_wide=server_wide, mpm=mpm, **kw)


def count_of(text):
    m = re.search(r"count=(\d+)", text)
    return int(m.group(1)) if m else None


def shown(text):
    """What /app/show printed, without mod_session's expiry stamp: the session carries one
    whenever SessionMaxAge or RhythmSessionIdleTimeout (on by default) applies."""
    _, _, raw = text.rstrip("\n").partition("=")
    return "&".join(p for p in raw.split("&") if p and not p.startswith("expiry="))


def set_cookie_headers(headers):
    return [v for k, v in headers if k.lower() == "set-cookie"]


def test_cookie_round_trip():
    with app_server() as h:
        b = Browser(h)
        status, headers, text = b.get("/app/counter")
        assert status == 200 and text == "count=1\n"
        cookies = set_cookie_headers(headers)
        assert len(cookies) == 1
        m = re.fullmatch(rf"{COOKIE}=([A-Za-z0-9_-]{{22}});path=/;HttpOnly;SameSite=Lax",
                         cookies[0])
        assert m, cookies[0]
        for n in range(2, 6):
            status, headers, text = b.get("/app/counter")
            assert (status, text) == (200, f"count={n}\n")
            assert set_cookie_headers(headers) == []  # the ID stays
        # The application reads what it wrote, through SessionEnv.
        assert shown(b.get("/app/show")[2]) == "count=5"
        st = h.status()
        assert st["RhythmSessions"] == 1
        # Five counts; the read does not save: the idle timeout's expiry moves at most once in
        # each thirtieth of it.
        assert st["RhythmSaves"] == 5
        assert st["RhythmHits"] == 5


def test_custom_cookie_name_and_attributes():
    with app_server("RhythmSessionCookieName sid path=/app;HttpOnly;SameSite=Strict") as h:
        status, headers, _ = Browser(h).get("/app/counter")
        assert status == 200
        assert re.fullmatch(r"sid=[A-Za-z0-9_-]{22};path=/app;HttpOnly;SameSite=Strict",
                            set_cookie_headers(headers)[0])


def test_sessions_are_separate():
    with app_server() as h:
        a, b = Browser(h), Browser(h)
        for _ in range(3):
            a.get("/app/counter")
        b.get("/app/counter")
        assert shown(a.get("/app/show")[2]) == "count=3"
        assert shown(b.get("/app/show")[2]) == "count=1"
        assert a.cookies[COOKIE] != b.cookies[COOKIE]


@pytest.mark.parametrize("mpm", ["event", "worker", "prefork"])
def test_concurrent_increments_are_serialized(mpm):
    """64 requests at once, each incrementing one session's counter: none is lost."""
    with app_server(mpm=mpm) as h:
        b = Browser(h)
        b.get("/app/counter")
        cookie = {"Cookie": f"{COOKIE}={b.cookies[COOKIE]}"}

        def one(_):
            return h.request("/app/counter", headers=cookie)[0]

        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            statuses = list(pool.map(one, range(64)))
        assert statuses == [200] * 64
        assert shown(b.get("/app/show")[2]) == "count=65"
        assert h.status()["RhythmLockWaits"] > 0


@pytest.mark.parametrize("how", ["graceful", "restart"])
def test_restart_keeps_sessions(how):
    with app_server() as h:
        b = Browser(h)
        for _ in range(3):
            b.get("/app/counter")
        getattr(h, how)()
        assert b.get("/app/counter")[2] == "count=4\n"
        assert "refused" not in h.log_text()


def test_garbage_or_forged_cookie_gets_a_new_session_and_changes_nothing():
    with app_server() as h:
        victim = Browser(h)
        victim.get("/app/counter")
        victim.get("/app/counter")
        real = victim.cookies[COOKIE]
        before = h.status()["RhythmSessions"]
        for bad in ["garbage", real[:-1], real + "A", "A" * 21 + "B", real.replace(real[3], "+"),
                    "%00" * 22, "AAAAAAAAAAAAAAAAAAAAAA"]:
            b = Browser(h)
            b.cookies[COOKIE] = bad
            status, headers, text = b.get("/app/counter")
            assert (status, text) == (200, "count=1\n"), bad
            new_id = b.cookies[COOKIE]
            assert new_id != bad and new_id != real
            assert re.fullmatch(r"[A-Za-z0-9_-]{22}", new_id)
        assert shown(victim.get("/app/show")[2]) == "count=2"
        assert h.status()["RhythmSessions"] == before + 7


def test_oversized_session_is_refused_and_the_old_one_stays():
    with app_server(server_wide="RhythmSessionMaxSize 1K") as h:
        b = Browser(h)
        b.get("/app/set?keep=me")
        assert b.get("/app/set?fill=2000")[0] == 200
        assert shown(b.get("/app/show")[2]) == "keep=me"
        log = h.log_text()
        m = re.search(r"RS0103: session not saved: it encodes to (\d+) bytes, more than "
                      r"RhythmSessionMaxSize \(1024 bytes\)", log)
        assert m and int(m.group(1)) > 2000
        assert "xxxxxxxx" not in log
        assert b.cookies[COOKIE] not in log
        assert h.status()["RhythmOversizedRefused"] == 1
        # A new session that is too big is refused too, and gets no cookie.
        fresh = Browser(h)
        fresh.get("/app/set?fill=2000")
        assert COOKIE not in fresh.cookies
        assert h.status()["RhythmOversizedRefused"] == 2


def test_emptied_session_is_deleted():
    with app_server() as h:
        b = Browser(h)
        b.get("/app/set?a=1")
        assert h.status()["RhythmSessions"] == 1
        status, headers, _ = b.get("/app/set?a=")
        assert status == 200
        assert any("max-age=0" in c.lower() for c in set_cookie_headers(headers))
        st = h.status()
        assert st["RhythmSessions"] == 0 and st["RhythmDeletions"] == 1
        assert COOKIE not in b.cookies


def test_expired_session_is_not_served_and_is_reclaimed():
    with app_server("SessionMaxAge 1") as h:
        b = Browser(h)
        b.get("/app/counter")
        assert b.get("/app/counter")[2] == "count=2\n"
        old = b.cookies[COOKIE]
        # The parent's sweep reclaims it without any request touching it.
        wait_for(lambda: h.status()["RhythmSessions"] == 0, 10, "the expired session's reclaim")
        assert h.status()["RhythmExpirations"] >= 1
        status, _, text = b.get("/app/counter")
        assert text == "count=1\n"
        assert b.cookies[COOKIE] != old


def test_full_cache_evicts_least_recently_used():
    with app_server(server_wide="RhythmSessionCacheSize 1M\nRhythmSessionMaxSize 16K") as h:
        first = Browser(h)
        first.get("/app/set?fill=3000")
        browsers = []
        for i in range(400):
            b = Browser(h)
            b.get("/app/set?fill=3000")
            browsers.append(b)
            if i % 20 == 0:
                first.get("/app/show")  # kept warm
        st = h.status()
        assert st["RhythmEvictions"] > 0
        assert st["RhythmNoSpace"] == 0
        assert shown(first.get("/app/show")[2]).startswith("blob=xxx")
        assert shown(browsers[-1].get("/app/show")[2]).startswith("blob=xxx")
        assert shown(browsers[0].get("/app/show")[2]) == ""


def test_session_include_and_exclude_are_honoured():
    with app_server("SessionExclude /app/show") as h:
        b = Browser(h)
        b.get("/app/counter")
        assert shown(b.get("/app/show")[2]) == ""
        assert b.get("/app/counter")[2] == "count=2\n"


def test_lock_timeout_answers_503_and_changes_nothing():
    with app_server(server_wide="RhythmSessionLockTimeout 300ms") as h:
        b = Browser(h)
        b.get("/app/counter")
        cookie = {"Cookie": f"{COOKIE}={b.cookies[COOKIE]}"}
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(h.request, "/app/slow?ms=2000", cookie)
            wait_for(lambda: h.status()["RhythmHits"] >= 1, 5, "the slow request to hold the lock")
            started = time.monotonic()
            status, headers, _ = h.request("/app/counter", headers=cookie)
            waited = time.monotonic() - started
            assert status == 503
            assert ("Retry-After", "1") in headers
            assert 0.25 < waited < 1.5
            assert slow.result()[0] == 200
        assert shown(b.get("/app/show")[2]) == "count=2"
        assert h.status()["RhythmLockTimeouts"] == 1
        assert "RS0102" in h.log_text()


def worker_pid_serving(h, path):
    """The PID of the child busy serving `path` (mode W), from server-status's worker table."""
    _, _, html = h.request("/server-status")
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        if path in row:
            cells = [re.sub(r"<[^>]+>", "", c).strip()
                     for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            if len(cells) > 3 and cells[1].isdigit() and cells[3] == "W":
                return int(cells[1])
    return None


def test_killed_worker_does_not_block_its_session():
    with app_server(mpm="prefork") as h:
        b = Browser(h)
        b.get("/app/counter")
        cookie = {"Cookie": f"{COOKIE}={b.cookies[COOKIE]}"}
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            hung = pool.submit(h.request, "/app/slow?ms=60000", cookie)
            # A worker shows "W" as soon as it reads the request, before it takes the lock.
            wait_for(lambda: h.status()["RhythmHits"] >= 1, 5, "the slow request to hold the lock")
            pid = wait_for(lambda: worker_pid_serving(h, "/app/slow"), 10, "the slow request")
            os.kill(pid, signal.SIGKILL)
            started = time.monotonic()
            status, _, text = h.request("/app/counter", headers=cookie)
            assert time.monotonic() - started < 5
            assert (status, text) == (200, "count=2\n")
            with pytest.raises(Exception):
                hung.result()
        assert h.status()["RhythmLocksReclaimed"] == 1


def test_server_status_has_a_rhythm_section():
    with app_server() as h:
        _, _, html = h.request("/server-status")
        assert "<h2>Rhythm sessions</h2>" in html
        keys = h.status().keys()
        for key in ["RhythmSessions", "RhythmBytesUsed", "RhythmBytesTotal", "RhythmHits",
                    "RhythmMisses", "RhythmEvictions", "RhythmExpirations", "RhythmLockWaits",
                    "RhythmLockTimeouts", "RhythmOversizedRefused"]:
            assert key in keys


def test_sizes_take_the_suffixes_rss_node_takes():
    h = app_server(server_wide="RhythmSessionCacheSize 64MiB\nRhythmSessionMaxSize 64kb")
    try:
        code, output = h.config_test()
        assert code == 0, output
    finally:
        h.cleanup()


@pytest.mark.parametrize("line,message", [
    ("RhythmSessionCacheSize 64X", "RhythmSessionCacheSize: '64X' has an unknown unit"),
    ("RhythmSessionCacheSize 12K", "RhythmSessionCacheSize: '12K' is out of range"),
    ("RhythmSessionCacheSize lots", "RhythmSessionCacheSize: 'lots' is not a size"),
    ("RhythmSessionMaxSize 0", "RhythmSessionMaxSize: '0' is out of range"),
    ("RhythmSessionLockTimeout 5min", "RhythmSessionLockTimeout: '5min' has an unknown unit"),
    ("RhythmSessionLockTimeout 0", "RhythmSessionLockTimeout: '0' is out of range"),
    ("RhythmSessionCookieName a=b", "is not a valid cookie name"),
    ("RhythmSession maybe", "RhythmSession must be On or Off"),
    ("<VirtualHost 127.0.0.1:1>\nRhythmSessionCacheSize 8M\n</VirtualHost>",
     "RhythmSessionCacheSize cannot occur within <VirtualHost> section"),
    ("RhythmSessionCacheSize 1M\nRhythmSessionMaxSize 512K",
     "RhythmSessionMaxSize (512K) must be at most a quarter of RhythmSessionCacheSize (1M)"),
])
def test_bad_directive_values_fail_the_config_test(line, message):
    h = app_server(server_wide=line)
    try:
        code, output = h.config_test()
        assert code != 0
        assert message in output, output
        if "quarter" not in message:
            assert "line" in output  # httpd names the file and line
    finally:
        h.cleanup()


def test_demo_page_counts_visits():
    with app_server() as h:
        b = Browser(h)
        b.get("/app/demo")
        status, _, html = b.get("/app/demo")
        assert status == 200
        assert "Visits in this session: 2" in html


def test_cookie_is_secure_over_tls():
    h = app_server(modules=["ssl", "socache_shmcb"])
    tls_port = h.add_tls_host()
    with h:
        # Plain HTTP: no Secure.
        _, headers, _ = h.request("/app/counter")
        assert "secure" not in set_cookie_headers(headers)[0].lower()
        c = http.client.HTTPSConnection("127.0.0.1", tls_port, timeout=10,
                                        context=ssl._create_unverified_context())
        c.request("GET", "/app/counter")
        resp = c.getresponse()
        resp.read()
        cookie = [v for k, v in resp.getheaders() if k.lower() == "set-cookie"][0]
        c.close()
        assert resp.status == 200
        assert cookie.endswith(";path=/;HttpOnly;SameSite=Lax;Secure")
