"""Session security defaults (docs/security.md) against the real apache2: IDs of 128 random
bits; cookies HttpOnly, SameSite=Lax, Secure over TLS; __Host- names; an ID the server did not
issue is never adopted, with or without the bank; the idle timeout that applies where
SessionMaxAge is not set."""

import concurrent.futures
import hashlib
import http.client
import os
import re
import ssl
import time

import pytest

from rhythm_httpd import (COOKIE, Browser, app_location, backed_server, session_id_of, session_key,
                          wait_for)
from rss_node_fixture import NOT_FOUND, RssNode
from test_module import app_server

def set_cookies(headers):
    return [v for k, v in headers if k.lower() == "set-cookie"]


def cookie_parts(header):
    """A Set-Cookie header as (name, value, {attribute in lower case: value})."""
    pair, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    attrs = {}
    for attribute in attributes:
        key, _, val = attribute.partition("=")
        attrs[key.strip().lower()] = val.strip()
    return name, value, attrs


def session_of(text):
    """/app/show's answer as a dict (mod_session's expiry stamp included, as "expiry")."""
    _, _, raw = text.rstrip("\n").partition("=")
    return dict(pair.split("=", 1) for pair in raw.split("&") if pair)


def new_id_bytes(session_id):
    """The 16 bytes of a session ID; fails unless it is their canonical 22-character form."""
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", session_id), session_id
    raw = session_key(session_id)
    assert len(raw) == 16
    assert session_id_of(raw) == session_id
    return raw


def forged_id():
    """A well-formed ID that no server issued."""
    return session_id_of(os.urandom(16))


# ---- IDs ----------------------------------------------------------------------------------------

def test_a_thousand_issued_ids_are_distinct_128_bit_values():
    with app_server() as h:
        def issue(_):
            status, headers, _ = h.request("/app/counter")
            assert status == 200
            (header,) = set_cookies(headers)
            name, value, _ = cookie_parts(header)
            assert name == COOKIE
            return value

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(issue, range(1000)))
        assert len(set(ids)) == 1000
        values = [int.from_bytes(new_id_bytes(i), "big") for i in ids]
        # Every one of the 128 bits varies: none is fixed, padded or derived from a counter's
        # high bits. (A given bit is the same in 1,000 random IDs with probability 2^-999.)
        ones, zeros = 0, 0
        for v in values:
            ones |= v
            zeros |= ~v & ((1 << 128) - 1)
        assert ones == zeros == (1 << 128) - 1
        assert h.status()["RhythmSessions"] == 1000


def assert_config_fails(line, message, server_wide=""):
    """`apache2 -t` on the test site with `line` (in its location) and `server_wide` fails and
    says `message`."""
    h = app_server(line, server_wide=server_wide)
    try:
        code, output = h.config_test()
        assert code != 0
        assert message in output, output
    finally:
        h.cleanup()


# ---- cookies ------------------------------------------------------------------------------------



def tls_request(port, path, cookie=None):
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                    context=ssl._create_unverified_context())
    try:
        c.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        resp = c.getresponse()
        return resp.status, resp.getheaders(), resp.read().decode()
    finally:
        c.close()


def tls_server(extra=""):
    h = app_server(extra, modules=["ssl", "socache_shmcb"])
    return h, h.add_tls_host()


def test_the_default_cookie_is_http_only_same_site_lax_and_secure_over_tls():
    h, tls_port = tls_server()
    with h:
        _, headers, _ = h.request("/app/counter")
        name, _, attrs = cookie_parts(set_cookies(headers)[0])
        assert name == COOKIE
        assert attrs == {"path": "/", "httponly": "", "samesite": "Lax"}
        status, headers, _ = tls_request(tls_port, "/app/counter")
        assert status == 200
        _, _, attrs = cookie_parts(set_cookies(headers)[0])
        assert attrs == {"path": "/", "httponly": "", "samesite": "Lax", "secure": ""}


def test_a_host_prefixed_cookie_works_over_tls():
    h, tls_port = tls_server("RhythmSessionCookieName __Host-sid")
    with h:
        status, headers, text = tls_request(tls_port, "/app/counter")
        assert (status, text) == (200, "count=1\n")
        (header,) = set_cookies(headers)
        name, value, attrs = cookie_parts(header)
        assert name == "__Host-sid"
        assert attrs == {"path": "/", "httponly": "", "samesite": "Lax", "secure": ""}
        assert "domain" not in attrs
        status, headers, text = tls_request(tls_port, "/app/counter", f"__Host-sid={value}")
        assert (status, text) == (200, "count=2\n")
        assert set_cookies(headers) == []
        # Over plain HTTP too the cookie says Secure: a browser would refuse it otherwise.
        _, headers, _ = h.request("/app/counter")
        assert "secure" in cookie_parts(set_cookies(headers)[0])[2]


@pytest.mark.parametrize("attributes,message", [
    ("path=/;HttpOnly;Domain=example.com",
     "RhythmSessionCookieName: the __Host-sid cookie has a Domain attribute"),
    ("path=/app;HttpOnly", "RhythmSessionCookieName: the __Host-sid cookie has path=/app"),
    ("HttpOnly;SameSite=Lax", "RhythmSessionCookieName: the __Host-sid cookie needs path=/"),
])
def test_a_host_prefixed_cookie_with_bad_attributes_fails_the_config_test(attributes, message):
    assert_config_fails(f"RhythmSessionCookieName __Host-sid {attributes}", message)


# ---- IDs the server did not issue ---------------------------------------------------------------

def assert_forged_id_is_not_adopted(h, forged, name=COOKIE):
    b = Browser(h)
    b.cookies[name] = forged
    status, headers, text = b.get("/app/set?secret=planted")
    assert (status, text) == (200, "ok\n")
    issued = b.cookies[name]
    assert issued != forged
    new_id_bytes(issued)
    # The forged ID holds nothing, and requests naming it are given no session of it.
    attacker = Browser(h)
    attacker.cookies[name] = forged
    status, headers, text = attacker.get("/app/show")
    assert status == 200
    assert "secret" not in session_of(text)
    assert set_cookies(headers) == []
    # The issued one holds what was written.
    assert session_of(b.get("/app/show")[2])["secret"] == "planted"
    return issued


def test_an_id_the_server_did_not_issue_is_never_adopted():
    with app_server() as h:
        assert_forged_id_is_not_adopted(h, forged_id())
        assert h.status()["RhythmSessions"] == 1


def test_an_id_the_bank_does_not_know_is_never_adopted():
    with RssNode("bank-1") as node, backed_server("web-a", [node], site=app_location()) as h:
        wait_for(lambda: h.status().get("RhythmBackupNodesUp") == 1, 10, "the agent's node")
        forged = forged_id()
        issued = assert_forged_id_is_not_adopted(h, forged)
        assert "not taken over (not found in the bank)" in h.log_text()
        key = session_key(issued)
        wait_for(lambda: node.fetch(key)["status"] != NOT_FOUND, 10, "the issued ID in the bank")
        assert node.fetch(session_key(forged))["status"] == NOT_FOUND
        assert h.status()["RhythmSessions"] == 1


def test_made_up_ids_write_at_most_one_rs0202_line_a_second_per_process():
    """A client sending made-up IDs as fast as it can (issue 16: 4,426 a second wrote 12.6 MB of
    RS0202 lines in 15 s): each process writes at most one such line a second, and the next one
    says how many it held back."""
    with RssNode("bank-1") as node, backed_server("web-a", [node], site=app_location()) as h:
        wait_for(lambda: h.status().get("RhythmBackupNodesUp") == 1, 10, "the agent's node")

        started = time.monotonic()

        def made_up():
            statuses = []
            while time.monotonic() - started < 3:
                b = Browser(h)
                b.cookies[COOKIE] = forged_id()
                statuses.append(b.get("/app/show")[0])
            return statuses
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = sum(pool.map(lambda _: made_up(), range(8)), [])
        seconds = time.monotonic() - started
        assert statuses == [200] * len(statuses)
        lines = [line for line in h.log_text().splitlines() if "RS0202" in line]
        per_process = {}
        for line in lines:
            pid = re.search(r"\[pid (\d+)", line).group(1)
            per_process.setdefault(pid, []).append(line)
        print(f"{len(statuses)} made-up IDs in {seconds:.1f} s: {len(lines)} RS0202 line(s) "
              f"from {len(per_process)} process(es)")
        for pid, said in per_process.items():
            assert len(said) <= seconds + 1, "\n".join(said)
        assert len(lines) < len(statuses) / 10
        held_back = [int(m.group(1)) for m in
                     (re.search(r"\((\d+) more such in this process", line) for line in lines) if m]
        assert held_back and sum(held_back) > 0, lines


# ---- signed IDs (RhythmSessionKeyFile) ----------------------------------------------------------

def key_file(tmp_path, name, *keys, mode=0o600):
    """A key file of `keys` (hex), the first signing."""
    path = tmp_path / name
    path.write_text("# the bank's session ID keys\n" + "".join(k + "\n" for k in keys))
    path.chmod(mode)
    return str(path)


KEY_NEW, KEY_OLD = os.urandom(32).hex(), os.urandom(32).hex()


def signed_parts(cookie):
    """(ID, tag) of a signed cookie value; fails unless it is of the signed form."""
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}", cookie), cookie
    return cookie[:22], cookie[23:]


def test_signed_ids_fail_over_and_a_made_up_one_costs_the_bank_nothing(tmp_path):
    keys = key_file(tmp_path, "ids.keys", KEY_NEW)
    with RssNode("bank-1") as node, \
            backed_server("web-a", [node], f"RhythmSessionKeyFile {keys}",
                          site=app_location()) as a, \
            backed_server("web-b", [node], f"RhythmSessionKeyFile {keys}",
                          site=app_location()) as b:
        wait_for(lambda: b.status().get("RhythmBackupNodesUp") == 1, 10, "web-b's agent")
        user = Browser(a)
        assert "count=1" in user.get("/app/counter")[2]
        sid, _ = signed_parts(user.cookies[COOKIE])
        wait_for(lambda: node.fetch(session_key(sid))["status"] != NOT_FOUND, 10,
                 "the session in the bank")
        user.server = b  # a failover: web-b verifies web-a's signature and takes the session over
        assert "count=2" in user.get("/app/counter")[2]
        assert user.cookies[COOKIE].startswith(sid + ".")

        fetches = node.status()["fetches"]
        made_up = [forged_id(),                                    # unsigned
                   forged_id() + "." + forged_id(),                # signed by no key
                   sid + "." + forged_id(),                        # a real ID, a made-up tag
                   forged_id() + user.cookies[COOKIE][22:]]        # a real tag, another ID
        for value in made_up:
            attacker = Browser(b)
            attacker.cookies[COOKIE] = value
            status, headers, text = attacker.get("/app/counter")
            assert (status, "count=1" in text) == (200, True), (value, text)
            assert attacker.cookies[COOKIE] != value
            signed_parts(attacker.cookies[COOKIE])
        assert node.status()["fetches"] == fetches  # none of them asked the bank
        assert b.status()["RhythmSessionIdsRefused"] == len(made_up)
        refused = [line for line in b.log_text().splitlines() if "RS0111" in line]
        assert refused, b.log_text()
        assert "RS0111: session cookie rhythm_session refused (" in refused[0]
        assert "not signed): a new session will be issued" in refused[0]  # the first made-up
        assert "RS0202" not in b.log_text()  # nothing was looked up
        assert "count=3" in user.get("/app/counter")[2]


def test_keys_rotate_without_ending_a_session(tmp_path):
    old_only = key_file(tmp_path, "old.keys", KEY_OLD)
    rotated = key_file(tmp_path, "rotated.keys", KEY_NEW, KEY_OLD)
    new_only = key_file(tmp_path, "new.keys", KEY_NEW)
    with app_server(server_wide=f"RhythmSessionKeyFile {old_only}") as h:
        user = Browser(h)
        user.get("/app/counter")
        old_cookie = user.cookies[COOKIE]
    with app_server(server_wide=f"RhythmSessionKeyFile {rotated}") as h:
        # The session is not here (a new server); what matters is the cookie it is sent back.
        user = Browser(h)
        user.get("/app/counter")
        sid, _ = signed_parts(user.cookies[COOKIE])
        assert "count=2" in user.get("/app/counter")[2]
        # Signed with the old key: accepted, and signed again with the new one.
        with_old = Browser(h)
        with_old.cookies[COOKIE] = sid + "." + sign(KEY_OLD, sid)
        status, headers, text = with_old.get("/app/counter")
        assert (status, "count=3" in text) == (200, True), text
        assert with_old.cookies[COOKIE] == sid + "." + sign(KEY_NEW, sid)
        assert h.status()["RhythmSessionIdsRefused"] == 0
    with app_server(server_wide=f"RhythmSessionKeyFile {new_only}") as h:
        stale = Browser(h)
        stale.cookies[COOKIE] = old_cookie
        stale.get("/app/counter")
        assert stale.cookies[COOKIE] != old_cookie
        assert h.status()["RhythmSessionIdsRefused"] == 1


def sign(key_hex, sid):
    """The tag of RhythmSessionKeyFile's signature: keyed BLAKE2b-128 of the ID's 16 bytes."""
    tag = hashlib.blake2b(session_key(sid), digest_size=16, key=bytes.fromhex(key_hex)).digest()
    return session_id_of(tag)


def test_accept_unsigned_takes_a_plain_id_and_signs_it(tmp_path):
    keys = key_file(tmp_path, "ids.keys", KEY_NEW)
    with app_server(server_wide=f"RhythmSessionKeyFile {keys} accept-unsigned") as h:
        plain = Browser(h)
        plain.get("/app/counter")
        sid, _ = signed_parts(plain.cookies[COOKIE])
        plain.cookies[COOKIE] = sid  # the cookie as a server without keys issued it
        status, _, text = plain.get("/app/counter")
        assert (status, "count=2" in text) == (200, True), text
        assert plain.cookies[COOKIE] == sid + "." + sign(KEY_NEW, sid)


@pytest.mark.parametrize("contents,mode,option,message", [
    ("abc\n", 0o600, "", "ids.keys:1: a key is 64 hex digits (openssl rand -hex 32), this line "
                          "has 3 characters"),
    ("# none\n", 0o600, "", "ids.keys: no key in it"),
    ("a" * 64 + "\n", 0o644, "", "ids.keys: a secret key must not be readable by group or "
                                 "others (mode 0644): chmod 600 it"),
    ("a" * 64 + "\n", 0o600, " accept-all", "RhythmSessionKeyFile: 'accept-all' is not an "
                                            "option (the only one is accept-unsigned)"),
])
def test_a_bad_key_file_fails_the_config_test(tmp_path, contents, mode, option, message):
    path = tmp_path / "ids.keys"
    path.write_text(contents)
    path.chmod(mode)
    assert_config_fails("", message, server_wide=f"RhythmSessionKeyFile {path}{option}")


# ---- the idle timeout ---------------------------------------------------------------------------

def expiry_stamp(text):
    """The expiry (Unix time in µs) stamped in /app/show's session: as of the last save."""
    stamp = session_of(text).get("expiry")
    return None if stamp is None else int(stamp)


def expiry_in(text):
    """Seconds from now to the stamped expiry (None: no stamp)."""
    stamp = expiry_stamp(text)
    return None if stamp is None else stamp / 1e6 - time.time()


def test_the_idle_timeout_is_30_minutes_by_default():
    with app_server() as h:
        b = Browser(h)
        b.get("/app/counter")
        assert 1790 < expiry_in(b.get("/app/show")[2]) <= 1800


def test_a_session_in_use_outlives_the_idle_timeout_and_an_idle_one_is_gone():
    with app_server("RhythmSessionIdleTimeout 2") as h:
        b = Browser(h)
        b.get("/app/counter")
        sid = b.cookies[COOKIE]
        created = time.monotonic()
        # Read (never written) every half second for twice the timeout: each read moves the
        # expiry forward.
        while time.monotonic() - created < 4:
            text = b.get("/app/show")[2]
            assert session_of(text)["count"] == "1"
            assert 0 < expiry_in(text) <= 2
            time.sleep(0.5)
        assert b.cookies[COOKIE] == sid
        # Left alone, it expires: the parent's sweep reclaims it, nobody asking.
        wait_for(lambda: h.status()["RhythmSessions"] == 0, 10, "the idle session's expiry")
        assert h.status()["RhythmExpirations"] == 1
        assert b.get("/app/counter")[2] == "count=1\n"
        assert b.cookies[COOKIE] != sid


def test_reads_move_the_expiry_only_after_session_expiry_update_interval():
    with app_server("RhythmSessionIdleTimeout 10\nSessionExpiryUpdateInterval 2") as h:
        b = Browser(h)
        b.get("/app/counter")
        saved = h.status()["RhythmSaves"]
        first = expiry_stamp(b.get("/app/show")[2])
        assert h.status()["RhythmSaves"] == saved  # moved by less than 2 s: not written
        time.sleep(2.2)  # let the interval pass
        b.get("/app/show")
        assert h.status()["RhythmSaves"] == saved + 1
        assert expiry_stamp(b.get("/app/show")[2]) >= first + 2_000_000


def test_session_max_age_overrides_the_idle_timeout():
    with app_server("RhythmSessionIdleTimeout 2\nSessionMaxAge 30") as h:
        b = Browser(h)
        b.get("/app/counter")
        assert 28 < expiry_in(b.get("/app/show")[2]) <= 30
        time.sleep(2.5)  # longer than the idle timeout
        assert b.get("/app/counter")[2] == "count=2\n"


def test_the_idle_timeout_can_be_switched_off():
    with app_server("RhythmSessionIdleTimeout Off") as h:
        b = Browser(h)
        b.get("/app/counter")
        text = b.get("/app/show")[2]
        assert expiry_in(text) is None
        assert h.status()["RhythmSaves"] == 1  # a read without changes writes nothing


def test_the_idle_timeout_reaches_the_bank():
    site = app_location("RhythmSessionIdleTimeout 4")
    with RssNode("bank-1") as node, backed_server("web-a", [node], site=site) as h:
        b = Browser(h)
        b.get("/app/counter")
        key = b.session_key()

        def in_bank():
            reply = node.fetch(key)
            return reply if reply["status"] != NOT_FOUND else None

        reply = wait_for(in_bank, 10, "the session in the bank")
        assert 0 < reply["expires_at_ms"] / 1e3 - time.time() <= 4
        # Idle past the timeout: the bank no longer has it either.
        wait_for(lambda: not in_bank(), 15, "the bank's copy to expire")


@pytest.mark.parametrize("value,message", [
    ("1500ms", "RhythmSessionIdleTimeout: '1500ms' is not a whole number of seconds"),
    ("soon", "RhythmSessionIdleTimeout: 'soon' is not a duration"),
    ("30min", "RhythmSessionIdleTimeout: '30min' has an unknown unit"),
])
def test_a_bad_idle_timeout_fails_the_config_test(value, message):
    assert_config_fails(f"RhythmSessionIdleTimeout {value}", message)
