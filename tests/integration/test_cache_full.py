"""A session cache that fills while the whole bank is away (docs/backup.md, "When the cache fills
while the bank is away"): the real apache2 with a 4 MiB cache backed up to one real rss_node,
which is stopped (SIGSTOP) while 300 visitors each make a session of 30-60 KiB, about four
times what the cache holds.

The node is stopped, not terminated: an rss_node keeps sessions in memory only, and one
restarted empty would also lose the sessions that only it held, which is the bank's durability
(docs/rss_node.md), not the cache's. Stopped, it keeps them, so what the bank holds at the end
is exactly what the cache's policy kept, and the tests compare every session that got a cookie
with the bank's real content.
"""

import os
import re
import signal

from rhythm_httpd import APP_LOCATION, COOKIE, Browser, Httpd, backed_server, wait_for
from rss_node_fixture import FOUND, RssNode
from test_backup import in_bank

CACHE = "RhythmSessionCacheSize 4M"
BACKED_SESSIONS = 20
VISITORS = 300


def fill_size(i):
    """30 to 60 KiB, spread evenly and reproducibly."""
    return 30 * 1024 + (i * 7919) % (30 * 1024)


def new_session(server, size, tag):
    """A new visitor whose page stores `size` bytes in its session: the browser, which has a
    cookie only if the server stored the session."""
    browser = Browser(server)
    status, _, _ = browser.get(f"/app/set?fill={size}&tag={tag}")
    assert status == 200
    return browser


def all_acknowledged(server):
    st = server.status()
    return (st["RhythmBackupNodesUp"] == 1 and st["RhythmBackupPending"] == 0 and
            st["RhythmBackupOldestUnacknowledgedMs"] == 0 and
            st.get("RhythmSessionsUnbacked", 0) == 0)


def blob_in_bank(node, browser):
    """The length of the session's blob in the bank, or None if the bank does not hold it."""
    status, _, data = in_bank(node, browser.cookies[COOKIE])
    m = re.search(rb"blob=(x*)", data) if status == FOUND else None
    return len(m.group(1)) if m else None


def lines_of(server, code):
    """(count, in all) of each rate-limited line `code` in the server's error log."""
    return [(int(count), int(total)) for count, total in
            re.findall(code + r": [^:]*: (\d+)[^,]*, (\d+) in all", server.log_text())]


class Outage:
    """The scenario as a context: 20 sessions of 20 KiB the bank acknowledges, then the node
    stopped (SIGSTOP) and 300 new visitors, then the node running again and every session the
    server holds acknowledged. `status` is server-status as it was during the outage."""

    def __init__(self, extra_server=""):
        self.node = RssNode("bank-1")
        self.server = backed_server("web-a", [self.node], extra=f"{CACHE}\n{extra_server}")

    def __enter__(self):
        self.node.start()
        try:
            self.server.start()
            self._run()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _run(self):
        a, node = self.server, self.node
        self.backed = [new_session(a, 20 * 1024, f"b{i}") for i in range(BACKED_SESSIONS)]
        wait_for(lambda: all_acknowledged(a), 10, "the first sessions acknowledged")
        os.kill(node.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: a.status()["RhythmBackupNodesUp"] == 0, 10, "the node seen away")
            self.visitors = [(new_session(a, fill_size(i), f"v{i}"), fill_size(i))
                             for i in range(VISITORS)]
            self.status = a.status()
        finally:
            os.kill(node.pid, signal.SIGCONT)
        wait_for(lambda: all_acknowledged(a), 15, "every session held acknowledged")

    def with_cookie(self):
        return [(b, size) for b, size in self.visitors if COOKIE in b.cookies]

    def __exit__(self, *exc):
        try:
            self.server.cleanup()
        finally:
            self.node.cleanup()


def test_by_default_no_session_the_bank_lacks_is_evicted_and_refused_saves_are_logged():
    with Outage() as o:
        kept = o.with_cookie()
        # Against the bank's real content: every session that got a cookie is there, with its
        # data; the first ones too, which the cache evicted while the bank held them.
        missing = [b.cookies[COOKIE] for b, size in kept if blob_in_bank(o.node, b) != size]
        missing += [b.cookies[COOKIE] for b in o.backed if blob_in_bank(o.node, b) != 20 * 1024]
        assert missing == [], f"{len(missing)} sessions that got a cookie are not in the bank"

        st, refused = o.status, VISITORS - len(kept)
        print(f"{len(kept)} of {VISITORS} visitors stored, {refused} refused")
        assert 0 < len(kept) < VISITORS // 2
        assert st["RhythmBackupEvictedUnbacked"] == 0
        assert st["RhythmSessionsUnbacked"] == len(kept)  # no visitor's session was evicted
        # Evicted: sessions the bank held, and only those (one may remain: no save fitted in
        # the room its eviction would have made, and nothing is evicted for a refused save).
        backed_held = st["RhythmSessions"] - st["RhythmSessionsUnbacked"]
        assert st["RhythmEvictions"] + backed_held == BACKED_SESSIONS
        assert st["RhythmEvictions"] >= BACKED_SESSIONS - 2
        assert st["RhythmBackupSavesRefusedUnbacked"] == refused
        assert st["RhythmNoSpace"] == 0
        # Each refusal is logged, rate-limited: the first at once, the rest counted into a line
        # at most every 10 s, which the httpd parent writes (its monitor runs every 10 s) if no
        # refusal follows.
        lines = wait_for(lambda: (lambda ls: ls if ls and ls[-1][1] == refused else None)(
            lines_of(o.server, "RS0106")), 25, "a line counting every refusal", interval=0.2)
        assert lines[0] == (1, 1)
        assert sum(count for count, _ in lines) == refused
        assert len(lines) <= 3
        assert "RS0107" not in o.server.log_text()
        _, _, html = o.server.request("/server-status")
        assert "Saves refused: room only by evicting sessions the bank lacks" in html


def test_when_allowed_unbacked_sessions_are_evicted_and_each_loss_is_counted_and_logged():
    with Outage("SessionBackupEvictUnbacked On") as o:
        kept = o.with_cookie()
        assert len(kept) == VISITORS  # every visitor got a session ...
        st = o.status
        lost = st["RhythmBackupEvictedUnbacked"]
        print(f"{lost} of {VISITORS} visitors' sessions evicted before the bank had them")
        assert lost > VISITORS // 2  # ... and most of them lost it
        # The figure is what the bank lacks: no more, no less.
        missing = [b for b, size in kept if blob_in_bank(o.node, b) is None]
        assert len(missing) == lost
        assert all(blob_in_bank(o.node, b) == size for b, size in kept if b not in missing)
        assert all(blob_in_bank(o.node, b) == 20 * 1024 for b in o.backed)
        assert st["RhythmEvictions"] == BACKED_SESSIONS + lost
        assert st["RhythmBackupSavesRefusedUnbacked"] == 0
        assert st["RhythmSessions"] == st["RhythmSessionsUnbacked"] == VISITORS - lost
        lines = wait_for(lambda: (lambda ls: ls if ls and ls[-1][1] == lost else None)(
            lines_of(o.server, "RS0107")), 25, "a line counting every loss", interval=0.2)
        assert lines[0][0] == lines[0][1] > 0  # the first save that evicted, at once
        assert sum(count for count, _ in lines) == lost
        assert len(lines) <= 3
        assert "RS0106" not in o.server.log_text()


def test_the_directive_takes_on_or_off_in_the_main_server_config_only():
    cases = [
        ("SessionBackupEvictUnbacked maybe", "SessionBackupEvictUnbacked must be On or Off"),
        ("<VirtualHost 127.0.0.1:80>\nSessionBackupEvictUnbacked On\n</VirtualHost>",
         "SessionBackupEvictUnbacked cannot occur within <VirtualHost> section"),
    ]
    for line, message in cases:
        h = Httpd(APP_LOCATION, server_wide=line)
        try:
            code, output = h.config_test()
            assert code != 0, line
            assert message in output, output
        finally:
            h.cleanup()
    h = Httpd(APP_LOCATION, server_wide="SessionBackupEvictUnbacked On")
    try:
        assert h.config_test() == (0, "Syntax OK\n")
    finally:
        h.cleanup()
