"""The README's first command ends in build/demo.py: HAProxy, two web servers and a bank of three
rss_nodes. It must print a working URL, count visits in the session, carry the count over when the
server that served it is killed as the demo explains, and stop everything it started on Ctrl-C.
Its page, seen in headless Chromium, shows the server that answered, the count, the session's
version in the bank and the nodes that hold it, and the command that fails the server over."""

import contextlib
import os
import pathlib
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

from chromium_fixture import Chromium
from rhythm_httpd import wait_for

TOP = pathlib.Path(__file__).resolve().parents[2]
NODES = 3
REPLICAS = 2


@contextlib.contextmanager
def running_demo():
    """build/demo.py, once it has printed its instructions: (the process, what it printed)."""
    demo = subprocess.Popen([sys.executable, str(TOP / "build" / "demo.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        lines = []

        def printed_everything():
            lines.append(demo.stdout.readline())
            return "Press Ctrl-C" in lines[-1]

        wait_for(printed_everything, 60, "the demo's instructions")
        yield demo, "".join(lines)
    finally:
        # Even when an assertion failed: Ctrl-C, so that the demo stops what it started.
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()


def demo_url(text):
    return re.search(r"Visit counter:\s+(http://127\.0\.0\.1:\d+/app/demo)", text).group(1)


def kill_commands(text):
    """{server name: the command the demo prints to kill it}."""
    return {name: command for command, name in
            re.findall(r"(kill -9 -- -\d+)\s+# (web\d)", text)}


def test_demo_counts_visits_survives_a_failover_and_stops_on_ctrl_c():
    with running_demo() as (demo, text):
        url = demo_url(text)
        pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", text)]
        kill = {name: int(command.rsplit("-", 1)[1])
                for name, command in kill_commands(text).items()}
        assert len(pids) == 3 + NODES and set(kill) == {"web1", "web2"}

        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        opener.open(url).read()
        page = opener.open(url).read().decode()
        assert "Visits in this session: 2" in page
        served_by = re.search(r"Served by (web\d)", page).group(1)
        status_urls = re.search(r"server-status:\s+(\S+)\s+and\s+(\S+)", text).groups()
        status_url = status_urls[0 if served_by == "web1" else 1] + "?auto"

        def acknowledged():
            lines = urllib.request.urlopen(status_url).read().decode()
            return ("RhythmBackupPending: 0" in lines and
                    "RhythmBackupOldestUnacknowledgedMs: 0" in lines)

        # As a person would: the visit is in the bank before the server is killed (write-behind
        # means a crash loses at most the changes not yet acknowledged).
        wait_for(acknowledged, 10, "the second visit in the bank")
        os.killpg(kill[served_by], signal.SIGKILL)

        def reload():
            # A request that met the server while it was dying gets a 502, and one that came to
            # the other server before the node saw the dead server's connection close a 503 with
            # Retry-After (docs/backup.md, Failover: the node asks the dead server for a handover
            # it cannot answer; met under ASan): reload, as one would.
            try:
                return opener.open(url).read().decode()
            except urllib.error.HTTPError as e:
                assert e.code in (502, 503)
                return None

        page = wait_for(reload, 10, "the page after the failover")
        visits = int(re.search(r"Visits in this session: (\d+)", page).group(1))
        assert visits >= 3
        assert re.search(r"Served by (web\d)", page).group(1) != served_by

        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(60) == 0
        assert "demo stopped" in demo.stdout.read()
        for pid in pids:
            wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10, f"process {pid} to stop")


def visit(text):
    """(the server that answered, the count) as the page shows them."""
    return (re.search(r"^Served by (web\d)", text, re.M).group(1),
            int(re.search(r"^Visits in this session: (\d+)$", text, re.M).group(1)))


def bank_copies(text):
    """{node: (version, count)} of each node the page's bank table shows holding the session."""
    copies = {}
    for node, version, data in re.findall(
            r"^(bank-\d)\tversion (\d+) \(term \d+, change \d+\): (.*)$", text, re.M):
        count = re.search(r"(?:^|&)count=(\d+)(?:&|$)", data)
        copies[node] = (int(version), int(count.group(1)) if count else None)
    return copies


def in_the_bank(text, count):
    """The version the page shows held, with this count, by REPLICAS nodes (named in its summary
    line) and by no other node, or None while the bank has not shown it yet (write-behind)."""
    holders = {n: v for n, (v, c) in bank_copies(text).items() if c == count}
    versions = set(holders.values())
    if len(holders) != REPLICAS or len(versions) != 1 or \
            text.count("\tdoes not hold it") != NODES - REPLICAS:
        return None
    (version,) = versions
    summary = re.search(r"^In the bank: version (\d+) .*, held by (.*) \(the bank keeps", text,
                        re.M)
    if not summary or int(summary.group(1)) != version or \
            set(summary.group(2).split(" and ")) != set(holders):
        return None
    return version


def test_the_page_in_chromium_shows_the_bank_and_the_failover(tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with running_demo() as (_, printed), Chromium(tmp_path / "chromium-profile") as browser:
        url = demo_url(printed)
        browser.open(url)
        browser.open(url)  # a reload: the second visit of the session
        text = browser.wait_text(lambda t: "Visits in this session" in t, 10, "the page")
        served_by, count = visit(text)
        assert count == 2, text
        text = browser.wait_text(lambda t: in_the_bank(t, count), 15,
                                 f"the bank to show visit {count} on {REPLICAS} nodes")
        version = in_the_bank(text, count)
        before = browser.screenshot(shots / "before-failover.png")

        # The page gives the command the demo prints for that server; run it, as a person would.
        command = re.search(r"^(kill -9 -- -\d+)$", text, re.M).group(1)
        assert command == kill_commands(printed)[served_by]
        assert "then reload this page" in text
        os.killpg(int(command.rsplit("-", 1)[1]), signal.SIGKILL)

        def reloaded():
            # A reload that met the server while it died gets HAProxy's error page: reload again.
            browser.open(url)
            return "Visits in this session" in browser.text()
        wait_for(reloaded, 15, "the page after the failover", interval=0.2)
        text = browser.text()
        now_served_by, now_count = visit(text)
        assert now_served_by != served_by and now_count >= count + 1, text
        text = browser.wait_text(lambda t: in_the_bank(t, now_count), 15,
                                 f"the bank to show visit {now_count} on {REPLICAS} nodes")
        now_version = in_the_bank(text, now_count)
        # The server that took the session over from the bank opened a new term.
        assert now_version >> 32 > version >> 32, (version, now_version)
        after = browser.screenshot(shots / "after-failover.png")
        print(f"screenshots: {before} {after}")
