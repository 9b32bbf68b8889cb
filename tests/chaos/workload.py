"""Browsers counting in their sessions: each client keeps one session and increments its counter
(/app/counter) at a user's pace, through the balancer, or in a share of requests straight to a
web server of its choosing (as a balancer that misroutes would). A share of the clients log in
first (mod_auth_form, which moves the session to a new ID), and count on /app/counter-user,
whose answer says who the session has logged in: a logged-in user must stay logged in. Every
request is one history entry, answered or not."""

import dataclasses
import random
import re
import threading
import time
import urllib.parse

from cluster.netns_thread import join_namespace

LOGIN_BODY = urllib.parse.urlencode({"httpd_username": "alice", "httpd_password": "s3cret"})
# Where mod_auth_form sends a browser whose login succeeded (tests/integration/test_auth_form.py).
LOGGED_IN_AT = "/private/secret.html"


@dataclasses.dataclass
class Request:
    client: int
    index: int
    start: float  # time.monotonic() of the campaign
    end: float
    target: str  # "balancer" or the web server asked directly
    status: int = 0  # 0: no answer (refused, timed out)
    server: str = ""  # the web server that answered (its X-Backend header)
    count: int = None  # the count the answer shows, if any
    error: str = ""
    kind: str = "count"  # "count", or "login" (a form login, answered 302 to LOGGED_IN_AT)
    # Who the answer says is logged in ("": nobody): a login's, or a logged-in client's count's.
    user: str = None


class Client(threading.Thread):
    """One browser, on the client host; `balancer` and `servers` offer request(path, headers,
    timeout, client=host) like rhythm_httpd.Httpd. The thread joins the host's network namespace
    and runs its requests itself: through the host's one namespace thread (host.call), the
    clients' requests would be run one at a time, and a request held by a paused server would
    hold every client's."""

    def __init__(self, number, host, balancer, servers, seed, stop, misroute=0.1,
                 pause_s=0.05, timeout_s=5, logs_in=False):
        super().__init__(name=f"client-{number}", daemon=True)
        self.number = number
        self.host = host
        self.balancer = balancer
        self.servers = servers
        self.random = random.Random(seed)
        self.stop_event = stop
        self.misroute = misroute
        self.pause_s = pause_s
        self.timeout_s = timeout_s
        self.cookies = {}
        self.history = []
        self.logs_in = logs_in
        self.logged_in = False

    def run(self):
        join_namespace(f"/run/netns/{self.host.netns}")
        index = 0
        while not self.stop_event.is_set():
            index += 1
            self.history.append(self.one(index))
            self.stop_event.wait(self.pause_s)

    def call(self, fn, *args, **kwargs):
        """As Host.call: this thread is in the client host's namespace already."""
        return fn(*args, **kwargs)

    def one(self, index):
        if self.servers and self.random.random() < self.misroute:
            target = self.random.choice(self.servers)
            name = target.name
        else:
            target, name = self.balancer, "balancer"
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} \
            if self.cookies else {}
        began = time.monotonic()
        request = Request(self.number, index, began, began, name)
        login = self.logs_in and not self.logged_in
        if login:
            request.kind = "login"
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            if login:
                status, response_headers, body = target.request(
                    "/dologin", headers, timeout=self.timeout_s, method="POST", body=LOGIN_BODY,
                    client=self)
            else:
                status, response_headers, body = target.request(
                    "/app/counter-user" if self.logs_in else "/app/counter", headers,
                    timeout=self.timeout_s, client=self)
        except OSError as e:
            request.end = time.monotonic()
            request.error = type(e).__name__
            return request
        request.end = time.monotonic()
        request.status = status
        for key, value in response_headers:
            if key.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                k, _, v = pair.partition("=")
                self.cookies[k.strip()] = v.strip()
            elif key.lower() == "x-backend":
                request.server = value
            elif key.lower() == "location" and login and status == 302:
                self.logged_in = value.endswith(LOGGED_IN_AT)
                request.user = "alice" if self.logged_in else ""
        m = re.search(r"count=(\d+)", body)
        if status == 200 and m:
            request.count = int(m.group(1))
            user = re.search(r"user=(\S*)", body)
            if user is not None:
                request.user = user.group(1)
                # Logged out (a session lost with its server): log in again.
                self.logged_in = request.user != ""
        return request
