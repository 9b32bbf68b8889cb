"""The README's first command ends in build/demo.py: it must print a working URL, count visits in
the session, and stop everything it started on Ctrl-C."""

import os
import pathlib
import re
import signal
import subprocess
import sys
import urllib.request

from rhythm_httpd import wait_for

TOP = pathlib.Path(__file__).resolve().parents[2]


def test_demo_serves_the_counter_and_stops_on_ctrl_c():
    demo = subprocess.Popen([sys.executable, str(TOP / "build" / "demo.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        lines = []

        def url_printed():
            lines.append(demo.stdout.readline())
            return re.search(r"Visit counter:\s+(http://127\.0\.0\.1:\d+/app/demo)", lines[-1])

        url = wait_for(url_printed, 30, "the demo's URL").group(1)
        pid = int(re.search(r"httpd pid (\d+)", "".join(lines)).group(1))
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        opener.open(url).read()
        page = opener.open(url).read().decode()
        assert "Visits in this session: 2" in page

        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(30) == 0
        assert "demo stopped" in demo.stdout.read()
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10, "httpd to stop")
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
