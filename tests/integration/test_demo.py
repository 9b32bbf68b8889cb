"""The README's first command ends in build/demo.py: HAProxy, two web servers and an rss_node.
It must print a working URL, count visits in the session, carry the count over when the server
that served it is killed as the demo explains, and stop everything it started on Ctrl-C."""

import os
import pathlib
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

from rhythm_httpd import wait_for

TOP = pathlib.Path(__file__).resolve().parents[2]


def test_demo_counts_visits_survives_a_failover_and_stops_on_ctrl_c():
    demo = subprocess.Popen([sys.executable, str(TOP / "build" / "demo.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        lines = []

        def printed_everything():
            lines.append(demo.stdout.readline())
            return "Press Ctrl-C" in lines[-1]

        wait_for(printed_everything, 60, "the demo's instructions")
        text = "".join(lines)
        url = re.search(r"Visit counter:\s+(http://127\.0\.0\.1:\d+/app/demo)", text).group(1)
        pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", text)]
        kill = dict((name, int(pgid)) for pgid, name in
                    re.findall(r"kill -9 -- -(\d+)\s+# (web\d)", text))
        assert len(pids) == 4 and set(kill) == {"web1", "web2"}

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
            # A request that met the server while it was dying gets a 502: reload, as one would.
            try:
                return opener.open(url).read().decode()
            except urllib.error.HTTPError as e:
                assert e.code == 502
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
    finally:
        # Even when an assertion failed: Ctrl-C, so that the demo stops what it started.
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
