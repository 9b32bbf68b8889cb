"""`rss_node end-session` (docs/rss_node.md, docs/security.md): an operator ends one session, or
every session, in the bank and on every web server. Real nodes (three, --replicas 2) and two real
web servers: an ended session is never served again, on the server that made it, on one that
holds a copy, or after a failover; a session made after the command lives on."""

import contextlib
import os
import subprocess
import time

from rhythm_httpd import COOKIE, Browser, backed_server, count_of, free_port, wait_for
from rss_node_fixture import END_SESSION_REPLY, ERROR, RssNode, binary_path, end_session_frames
from test_bank import bank, wait_backed
from test_backup import backup_status


@contextlib.contextmanager
def two_servers_and_a_bank():
    with bank(["n1", "n2", "n3"], 2) as nodes, backed_server("web-a", nodes) as a, \
            backed_server("web-b", nodes) as b:
        for web in (a, b):
            wait_for(lambda: backup_status(web)["RhythmBackupNodesUp"] == 3, 10, "nodes up")
        yield nodes, a, b


def end_session(*args):
    return subprocess.run([binary_path(), "end-session", *args], capture_output=True, text=True,
                          timeout=60)


def counted(server, count):
    browser = Browser(server)
    for _ in range(count):
        assert browser.get("/app/counter")[0] == 200
    return browser


def on(server, browser):
    """The same browser sent to `server` (a failover, or a balancer that misroutes)."""
    moved = Browser(server)
    moved.cookies = dict(browser.cookies)
    return moved


def log_has(server, code):
    return code in server.log_text()


def log_lines(server, code):
    return [line for line in server.log_text().splitlines() if code in line]


def test_an_ended_session_is_served_by_no_server_not_even_after_a_failover():
    with two_servers_and_a_bank() as (nodes, a, b):
        ended, kept = counted(a, 3), counted(a, 2)
        wait_backed(a)
        # web-b fetches a copy and keeps it: it holds the session too, without having changed it.
        status, _, text = on(b, ended).get("/app/show")
        assert status == 200 and "count=3" in text, text
        dropped_before = [backup_status(w)["RhythmBackupStaleDropped"] for w in (a, b)]

        done = end_session(ended.cookies[COOKIE], *[n.queries for n in nodes])
        assert done.returncode == 0, done.stderr
        assert done.stdout.count(": ended (1 tombstone(s) stored)") == 2, done.stdout
        assert done.stdout.count(": owns no shard of it") == 1, done.stdout
        assert sum(n.status()["sessions_ended"] for n in nodes) == 2
        assert all(log_has(n, "RN0307: an operator ended session") for n in nodes
                   if n.status()["sessions_ended"])
        # Each server's agent has read the nodes' word and dropped its copy.
        for web, before in zip((a, b), dropped_before):
            wait_for(lambda: backup_status(web)["RhythmBackupStaleDropped"] > before, 5,
                     f"{web.name} to drop its copy")

        for server in (a, b, a):
            browser = on(server, ended)
            status, _, text = browser.get("/app/counter")
            assert (status, count_of(text)) == (200, 1), (server.name, text)
            assert browser.cookies[COOKIE] != ended.cookies[COOKIE]
        # The other session lives on, here and after a failover.
        assert count_of(kept.get("/app/counter")[2]) == 3
        wait_backed(a)
        assert count_of(on(b, kept).get("/app/counter")[2]) == 4


def test_ending_every_session_ends_what_each_server_holds_and_not_what_comes_after():
    with two_servers_and_a_bank() as (nodes, a, b):
        on_a = [counted(a, 2) for _ in range(5)]
        on_b = [counted(b, 3) for _ in range(3)]
        wait_backed(a)
        wait_backed(b)

        done = end_session("--all", *[n.queries for n in nodes])
        assert done.returncode == 0, done.stderr
        # Each of the 8 sessions had 2 copies.
        assert sum(n.status()["sessions_ended"] for n in nodes) == 16
        for web in (a, b):
            wait_for(lambda: log_has(web, "RS0330"), 5, f"{web.name} to hear of it")

        for browser in on_a + on_b:
            for server in (a, b):
                status, _, text = on(server, browser).get("/app/counter")
                assert (status, count_of(text)) == (200, 1), (server.name, text)
        # Sessions made after it live on, through a failover too.
        after = counted(a, 2)
        wait_backed(a)
        assert count_of(on(b, after).get("/app/counter")[2]) == 3
        assert backup_status(b)["RhythmBackupStalls"] == 0  # an end is not counted as a stall


def test_a_node_that_did_not_answer_is_named_and_the_command_fails():
    with two_servers_and_a_bank() as (nodes, a, b):
        browser = counted(a, 1)
        wait_backed(a)
        silent = free_port()
        # A signed cookie's value (ID.TAG) names its session as well as the bare ID.
        done = end_session(browser.cookies[COOKIE] + ".some-tag", *[n.queries for n in nodes],
                           f"tcp://127.0.0.1:{silent}")
        assert done.returncode == 2  # an error (docs/rss_node.md, exit codes)
        assert f"no answer from tcp://127.0.0.1:{silent}" in done.stderr, done.stderr
        assert "1 node(s) did not answer" in done.stderr, done.stderr
        # The nodes that answered ended it all the same.
        assert done.stdout.count("ended") == 2, done.stdout
        assert count_of(browser.get("/app/counter")[2]) == 1


def test_a_flood_of_end_session_requests_is_answered_busy_and_the_node_serves_on():
    """A client on the queries socket sends 3,000 end-session requests for made-up sessions as
    fast as it can, and two ends of every session: past 1,000 a second and one --all each 10 s,
    the node answers busy, counts them, and goes on serving a web server's sessions."""
    with RssNode("bank-1") as node, backed_server("web-a", [node]) as a:
        browser = Browser(a)
        browser.get("/app/counter")
        wait_backed(a)
        requester = node.requester()
        started = time.monotonic()
        for i in range(3000):
            requester.send_raw(end_session_frames(i + 1, os.urandom(16)))
        for i in range(2):
            requester.send_raw(end_session_frames(10000 + i))
        answers = [requester.receive(timeout=10) for _ in range(3002)]
        took = time.monotonic() - started
        busy = [r for r in answers if r["type"] == ERROR]
        ended = [r for r in answers if r["type"] == END_SESSION_REPLY]
        print(f"end-session flood: {len(ended)} taken, {len(busy)} busy, in {took:.2f} s")
        assert len(busy) + len(ended) == 3002
        seconds = int(took) + 1  # the windows of a second it spanned, at most
        assert len(ended) <= 1000 * seconds + 1, (len(ended), took)
        assert [r["request_id"] for r in busy if r["request_id"] >= 10000] == [10001]
        assert node.status()["end_sessions_refused"] == len(busy) > 0
        # One line for the flood (at most one each 10 s), with the count.
        assert len(log_lines(node, "RN0309")) == 1
        assert "(1 refused so far" in log_lines(node, "RN0309")[0]
        # The web server's session was among "every session": its next request starts afresh,
        # and the node serves on.
        wait_for(lambda: log_has(a, "RS0330"), 5, "web-a to hear of it")
        assert count_of(browser.get("/app/counter")[2]) == 1
        wait_backed(a)


def test_bad_arguments_say_what_is_wrong_and_end_nothing():
    cases = [
        (["not-a-session-id", "tcp://127.0.0.1:1"], "end-session needs --all or a session ID"),
        (["AAAAAAAAAAAAAAAAAAAAAA"], "end-session needs --all or a session ID"),
        (["--all"], "usage:"),
        (["--everything", "tcp://127.0.0.1:1"], "unknown option '--everything'"),
        (["--all", "not-an-endpoint"], "not-an-endpoint"),
    ]
    for args, message in cases:
        done = end_session(*args)
        assert done.returncode == 2, args
        assert message in done.stderr, (args, done.stderr)
