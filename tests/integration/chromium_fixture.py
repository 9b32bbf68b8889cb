"""A headless Chromium for tests that look at a page as a person would: Debian's /usr/bin/chromium
(RHYTHM_CHROMIUM to use another), driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: JSON messages ending in a NUL byte, read by Chromium on its fd 3 and
written on its fd 4), so nothing beyond the standard library is needed and no port is opened.

    with Chromium(tmp_path / "profile") as browser:
        browser.open("http://127.0.0.1:8080/app/demo")
        text = browser.wait_text(lambda t: "done" in t, 10, "the page to finish")
        browser.screenshot(tmp_path / "page.png")

One browser keeps its cookies from page to page, as one tab would. It runs as a session of its
own and is stopped by its PID (its helper processes with it, by its process group).
"""

import base64
import fcntl
import json
import os
import pathlib
import select
import signal
import subprocess
import time

from rhythm_httpd import wait_for

CHROMIUM = os.environ.get("RHYTHM_CHROMIUM", "/usr/bin/chromium")

# Headless as root in a container, and quiet: no sandbox (it needs user namespaces), no GPU, no
# calls home.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-pipe"]


class Chromium:
    """One headless Chromium with one page. `profile`: a directory for its --user-data-dir (made
    when missing; it should start empty); its log goes there too."""

    def __init__(self, profile, width=1000, height=900):
        self.profile = pathlib.Path(profile)
        self.width, self.height = width, height
        self.proc = None
        self.next_id = 0
        self.pending = b""
        self.events = []
        self.session = None

    def start(self, timeout=30):
        self.profile.mkdir(parents=True, exist_ok=True)
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Above fd 4, so that moving them to 3 and 4 in the child overwrites neither.
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)

        def pipes_on_3_and_4():
            os.dup2(child_in, 3)  # dup2 leaves the copies inheritable
            os.dup2(child_out, 4)

        self.log_file = open(self.profile / "chromium.log", "ab")
        try:
            self.proc = subprocess.Popen(
                [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}",
                 f"--window-size={self.width},{self.height}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=self.log_file,
                preexec_fn=pipes_on_3_and_4, close_fds=False, start_new_session=True)
        finally:
            os.close(child_in)
            os.close(child_out)
        self.to_browser = os.fdopen(to_browser_w, "wb", buffering=0)
        self.from_browser = os.fdopen(from_browser_r, "rb", buffering=0)
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
            attached = self.call("Target.attachToTarget",
                                 {"targetId": target["targetId"], "flatten": True})
            self.session = attached["sessionId"]
            self.call("Page.enable", session=True)
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                       "mobile": False}, session=True)
        except BaseException:
            self.stop()  # `with` calls no __exit__ when __enter__ fails
            raise
        return self

    def _receive(self, deadline, what):
        """The next message from the browser; TimeoutError past `deadline` (a hung browser must
        not hang the test)."""
        while b"\0" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer in time: {what}")
            chunk = self.from_browser.read(1 << 16)
            if not chunk:
                raise RuntimeError(f"Chromium closed its pipe:\n{self.log_text()}")
            self.pending += chunk
        message, _, self.pending = self.pending.partition(b"\0")
        return json.loads(message)

    def call(self, method, params=None, session=False, timeout=30):
        """Sends one DevTools command (to the page when `session`) and returns its result; the
        events that come before the answer are kept in `events`."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.to_browser.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline, method)
            if reply.get("id") == self.next_id:
                break
            self.events.append(reply)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def open(self, url, timeout=30):
        """Loads `url` in the page and waits for its load event (the same URL again reloads it)."""
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True, timeout=timeout)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._receive(deadline, f"{url} to load"))

    def text(self):
        """The page's text as a person sees it (after its scripts ran): document.body.innerText."""
        result = self.call("Runtime.evaluate",
                           {"expression": "document.body ? document.body.innerText : ''",
                            "returnByValue": True}, session=True)
        return result["result"]["value"]

    def wait_text(self, condition, timeout, what):
        """Polls the page's text until condition(text) is true; returns that text."""
        seen = []

        def check():
            seen.append(self.text())
            return condition(seen[-1])
        try:
            wait_for(check, timeout, what, interval=0.1)
        except TimeoutError as e:
            raise TimeoutError(f"{e}; the page's text:\n{seen[-1] if seen else ''}") from None
        return seen[-1]

    def screenshot(self, path):
        """The whole page as a PNG at `path`."""
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                         session=True)["data"]
        pathlib.Path(path).write_bytes(base64.b64decode(data))
        return path

    def log_text(self):
        try:
            return (self.profile / "chromium.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=10):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        for f in (self.to_browser, self.from_browser, self.log_file):
            f.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
