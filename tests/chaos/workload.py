"""Browsers counting in their sessions: each client keeps one session and increments its counter
(/app/counter) at a user's pace, through the balancer, or in a share of requests straight to a
web server of its choosing (as a balancer that misroutes would). Every request is one history
entry, answered or not."""

import dataclasses
import random
import re
import threading
import time


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


class Client(threading.Thread):
    """One browser, on the client host; `balancer` and `servers` offer request(path, headers,
    timeout, client=host) like rhythm_httpd.Httpd."""

    def __init__(self, number, host, balancer, servers, seed, stop, misroute=0.1,
                 pause_s=0.05, timeout_s=5):
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

    def run(self):
        index = 0
        while not self.stop_event.is_set():
            index += 1
            self.history.append(self.one(index))
            self.stop_event.wait(self.pause_s)

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
        try:
            status, response_headers, body = target.request(
                "/app/counter", headers, timeout=self.timeout_s, client=self.host)
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
        m = re.search(r"count=(\d+)", body)
        if status == 200 and m:
            request.count = int(m.group(1))
        return request
