"""A private Apache httpd for tests: the real /usr/sbin/apache2 with mod_rhythm_session loaded,
its own ServerRoot in a temporary directory, a free 127.0.0.1 port, stopped by its PID.

Every integration test (and the demo and benchmarks) starts servers through this class, a web
server with backup through backed_server(), and reads session IDs with session_key() and
session_id_of(). Set RHYTHM_KEEP_TMP=1 to keep the temporary directory of each server for reading
its logs.

A server runs on this machine's own network unless it is given a `host` of tests/cluster (a
network namespace with an address of its own): it then listens on that address, runs in that
namespace, and the test's requests to it are made from there (LocalHost says what a host offers).
"""

import base64
import http.client
import os
import pathlib
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
PAGES = HERE / "pages"
HTTPD = os.environ.get("RHYTHM_HTTPD", "/usr/sbin/apache2")
SYSTEM_MODULES = pathlib.Path(os.environ.get("RHYTHM_HTTPD_MODULES", "/usr/lib/apache2/modules"))


# The session cookie's name when RhythmSessionCookieName is not set.
COOKIE = "rhythm_session"


def app_location(extra=""):
    """Site text for the test application: /app/* (the pages mapped in every server's
    configuration) keeps its sessions in Rhythm; `extra` goes inside the <Location>."""
    return f"""
<Location /app>
    Session On
    SessionEnv On
    SessionHeader X-Replace-Session
    RhythmSession On
    {extra}
</Location>
"""


APP_LOCATION = app_location()


def session_key(session_id):
    """The 16 bytes of a session ID given in its cookie form (22 characters of base64url without
    padding): the key the bank holds the session under."""
    return base64.urlsafe_b64decode(session_id + "==")


def session_id_of(key):
    """The cookie form of a session's 16-byte key."""
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def module_path():
    """The freshly built module; CTest sets RHYTHM_MODULE."""
    path = os.environ.get("RHYTHM_MODULE")
    if not path:
        path = str(HERE.parents[1] / "_build" / "mod_rhythm_session" / "mod_rhythm_session.so")
    if not os.path.exists(path):
        raise RuntimeError(f"mod_rhythm_session.so not found at {path}: build first or set RHYTHM_MODULE")
    return os.path.abspath(path)


def httpd_environment():
    """The environment apache2 runs in. RHYTHM_HTTPD_PRELOAD (e.g. the sanitizer runtimes a
    sanitized module needs) becomes its LD_PRELOAD, and only its."""
    env = dict(os.environ)
    preload = os.environ.get("RHYTHM_HTTPD_PRELOAD")
    if preload:
        env["LD_PRELOAD"] = preload
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    return env


class LocalHost:
    """Where a server runs unless told otherwise: this machine's own network, on 127.0.0.1. A
    tests/cluster host offers the same: its address, popen and run for its commands, and call for
    Python code that opens sockets there."""

    address = "127.0.0.1"

    def popen(self, cmd, **kwargs):
        return subprocess.Popen(cmd, **kwargs)

    def run(self, cmd, **kwargs):
        return subprocess.run(cmd, **kwargs)

    def call(self, fn, *args, **kwargs):
        return fn(*args, **kwargs)


LOCAL = LocalHost()


def _ephemeral_low():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        return int(f.read().split()[0])


# free_port() chooses below the kernel's ephemeral range, where neither an outgoing connection
# nor a bind to port 0 can take the port between its choice and its server's bind (CI met an
# rss_node that could not bind a port bind(0) had chosen), and never hands a port out twice in
# one test process, so servers whose ports are all chosen before any starts never share one.
_PORTS_FIRST, _PORTS_END = 10000, _ephemeral_low()
_ports_given = set()
_ports_lock = threading.Lock()


def free_port(address="127.0.0.1"):
    """A port of `address` that nothing listens on and that this process has not handed out."""
    with _ports_lock:
        for _ in range(1000):
            port = random.randrange(_PORTS_FIRST, _PORTS_END)
            if port in _ports_given:
                continue
            with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET,
                               socket.SOCK_STREAM) as s:
                try:
                    s.bind((address, port))
                except OSError:
                    continue
            _ports_given.add(port)
            return port
    raise RuntimeError(f"no free port of {address} in {_PORTS_FIRST}-{_PORTS_END - 1}")


def wait_for(condition, timeout, what, interval=0.02):
    """Polls `condition` until it returns a true value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


BASE_MODULES = [
    "authz_core", "authz_host", "authn_core", "mime", "dir", "alias", "env", "headers",
    "session", "lua", "status", "setenvif", "request",
]

# ServerLimit leaves room beyond MaxRequestWorkers / ThreadsPerChild (4 processes): after a
# graceful restart the old generation's children finish their requests in slots of their own,
# and with none to spare httpd says "AH03490: scoreboard is full" (seen once in 7 runs of three
# restarts in a row under ASan). Debian's default leaves 16 slots for 6 processes.
# MinSpareThreads within what StartServers starts: with the default (75) every server forks a
# third child a second after it starts, while the first users arrive (under ASan that start-up
# takes CPU the backup agents need to answer handovers in time; not shown to be what caused the
# start-up 503s, docs/consistency.md).
MPM_SETTINGS = {
    "event": """
StartServers 2
MinSpareThreads 32
ServerLimit 8
ThreadsPerChild 32
MaxRequestWorkers 128
""",
    "worker": """
StartServers 2
MinSpareThreads 32
ServerLimit 8
ThreadsPerChild 32
MaxRequestWorkers 128
""",
    "prefork": """
StartServers 8
MinSpareServers 8
MaxSpareServers 32
ServerLimit 80
MaxRequestWorkers 80
""",
}


def http_request(port, path, headers=None, timeout=30, method="GET", body=None,
                 address="127.0.0.1"):
    """One request to address:port on a new connection: (status, headers as a list of pairs,
    body text)."""
    c = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        resp = c.getresponse()
        return resp.status, resp.getheaders(), resp.read().decode(errors="replace")
    finally:
        c.close()


class ManagedServer:
    """What every server a test starts has in common: a temporary directory of its own, kept
    when RHYTHM_KEEP_TMP is set, and a log; `with` starts it and cleans it up. A subclass gives
    `dir`, `log_path`, `start()` and `stop()`."""

    def cleanup(self):
        self.stop()
        if os.environ.get("RHYTHM_KEEP_TMP"):
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def end_process(self, timeout, sig=signal.SIGTERM):
        """Signals the server's process by its PID and waits for it; SIGKILL if it lingers."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)

    def wait_until_answering(self, timeout, what):
        """After starting: polls `_answers()` (which raises if the process died); a server that
        does not answer in time is stopped, and its log is in the error."""
        try:
            wait_for(self._answers, timeout, what)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.name} did not start:\n{self.log_text()}")
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


class Httpd(ManagedServer):
    """One private httpd. `site` is configuration text appended to the base config; `{dir}` in it
    is replaced with the server's temporary directory and `{pages}` with the test pages. `host`:
    where it runs (LOCAL, or a tests/cluster host)."""

    def __init__(self, site="", mpm="event", modules=(), server_wide="", name="httpd",
                 host=LOCAL):
        self.mpm = mpm
        self.name = name
        self.host = host
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"rhythm-{name}-"))
        # mkdtemp makes a 0700 folder; the children run as an unprivileged user.
        os.chmod(self.dir, 0o755)
        (self.dir / "htdocs").mkdir()
        # The children run as an unprivileged user who may not reach the source tree (a CI
        # clone in a 0700 folder): they get their own copy of the pages.
        self.pages = self.dir / "pages"
        shutil.copytree(PAGES, self.pages)
        (self.dir / "htdocs" / "index.html").write_text("hello\n")
        self.port = host.call(free_port, host.address)
        self.proc = None
        self.conf = self.dir / "httpd.conf"
        self.log_path = self.dir / "error.log"
        self.write_config(site, modules, server_wide)

    @property
    def url(self):
        return f"http://{self.host.address}:{self.port}"

    def write_config(self, site, modules, server_wide):
        # Ours before mod_session, as Debian's alphabetical mods-enabled/*.load would have it.
        loads = [f"LoadModule mpm_{self.mpm}_module {SYSTEM_MODULES}/mod_mpm_{self.mpm}.so",
                 f"LoadModule rhythm_session_module {module_path()}"]
        for m in list(BASE_MODULES) + [m for m in modules if m not in BASE_MODULES]:
            loads.append(f"LoadModule {m}_module {SYSTEM_MODULES}/mod_{m}.so")
        user = ""
        if os.geteuid() == 0:
            www = "www-data"
            try:
                pwd.getpwnam(www)
            except KeyError:
                www = "nobody"
            user = f"User {www}\nGroup {'www-data' if www == 'www-data' else 'nogroup'}\n"
        text = f"""# generated by tests/integration/rhythm_httpd.py
ServerRoot "{self.dir}"
ServerName {self.host.address}
DefaultRuntimeDir "{self.dir}"
PidFile "{self.dir}/httpd.pid"
ErrorLog "{self.log_path}"
LogLevel warn rhythm_session:debug
Listen {self.host.address}:{self.port}
{user}
{chr(10).join(loads)}
{MPM_SETTINGS[self.mpm]}
Mutex file:{self.dir} default
TypesConfig /etc/mime.types
DocumentRoot "{self.dir}/htdocs"
KeepAlive On
MaxKeepAliveRequests 0
<Directory />
    AllowOverride None
    Require all granted
</Directory>
<Location /server-status>
    SetHandler server-status
</Location>
ExtendedStatus On
{server_wide}

# The test pages (mod_lua).
LuaMapHandler ^/app/counter$ "{self.pages}/app.lua" counter
LuaMapHandler ^/app/counter-user$ "{self.pages}/app.lua" counter_user
LuaMapHandler ^/app/slow$ "{self.pages}/app.lua" slow
LuaMapHandler ^/app/show$ "{self.pages}/app.lua" show
LuaMapHandler ^/app/set$ "{self.pages}/app.lua" set
LuaMapHandler ^/app/demo$ "{self.pages}/app.lua" demo

{site.replace("{dir}", str(self.dir)).replace("{pages}", str(self.pages))}
"""
        self.conf.write_text(text)

    def add_tls_host(self):
        """Adds a TLS virtual host with a fresh self-signed certificate (the server needs the
        ssl and socache_shmcb modules); returns its port."""
        tls_port = self.host.call(free_port, self.host.address)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", f"/CN={self.host.address}", "-keyout", str(self.dir / "key.pem"),
                        "-out", str(self.dir / "cert.pem")], check=True, capture_output=True)
        with open(self.conf, "a") as conf:
            conf.write(f"""
Listen {self.host.address}:{tls_port} https
<VirtualHost {self.host.address}:{tls_port}>
    SSLEngine on
    SSLCertificateFile "{self.dir}/cert.pem"
    SSLCertificateKeyFile "{self.dir}/key.pem"
</VirtualHost>
""")
        return tls_port

    def config_test(self):
        """Runs `apache2 -t` on the config; returns (exit code, output)."""
        p = subprocess.run([HTTPD, "-f", str(self.conf), "-t"], capture_output=True, text=True,
                           timeout=60, env=httpd_environment())
        return p.returncode, p.stdout + p.stderr

    def start(self, timeout=20):
        # A session of its own: prefork signals its whole process group when it stops.
        self.proc = self.host.popen([HTTPD, "-f", str(self.conf), "-DFOREGROUND"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    start_new_session=True, env=httpd_environment())
        return self.wait_until_answering(timeout, f"{self.name} to answer on port {self.port}")

    def _answers(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                               f"{self.proc.stderr.read().decode(errors='replace')}\n{self.log_text()}")
        try:
            status, _, _ = self.request("/index.html", timeout=2)
            return status == 200
        except OSError:
            return False

    @property
    def pid(self):
        return self.proc.pid

    def generation(self):
        """The number of restarts the parent reports on server-status."""
        _, _, body = self.request("/server-status?auto")
        for line in body.splitlines():
            if line.startswith("ParentServerConfigGeneration:"):
                return int(line.split(":")[1])
        return None

    def graceful(self, timeout=20):
        before = self.generation()
        subprocess.run([HTTPD, "-f", str(self.conf), "-k", "graceful"], check=True, timeout=60,
                       env=httpd_environment())
        wait_for(lambda: self._generation_after(before), timeout, "the graceful restart")

    def restart(self, timeout=20):
        """SIGHUP: an immediate restart of every child."""
        before = self.generation()
        os.kill(self.pid, signal.SIGHUP)
        wait_for(lambda: self._generation_after(before), timeout, "the SIGHUP restart")

    def _generation_after(self, before):
        try:
            g = self.generation()
        except OSError:
            return False
        return g is not None and g > before

    def stop(self, timeout=20):
        self.end_process(timeout)
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def kill(self, timeout=10):
        """The server dies: SIGKILL to the parent, every child and the backup agent at once (its
        process group: the server runs as a session of its own), then waits until its port
        refuses connections. SIGKILL to the parent alone is no dead server: the children keep
        the listening socket and go on serving."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout)
        wait_for(lambda: not self._port_open(), timeout, f"{self.name}'s port to close")

    def _port_open(self):
        try:
            self.host.call(socket.create_connection, (self.host.address, self.port),
                           timeout=1).close()
            return True
        except OSError:
            return False

    def request(self, path, headers=None, timeout=30, method="GET", body=None, client=None):
        """A request from `client` (a host; by default the server's own)."""
        return (client or self.host).call(http_request, self.port, path, headers, timeout,
                                          method, body, self.host.address)

    def status(self):
        """The module's server-status ?auto lines as a dict: ints, and text where a line is not
        a number (the names of the backup nodes)."""
        _, _, body = self.request("/server-status?auto")
        out = {}
        for line in body.splitlines():
            key, _, value = line.partition(": ")
            if key.startswith("Rhythm"):
                out[key] = int(value) if value.isdigit() else value
        return out


def backed_server(name, nodes, extra="", site=APP_LOCATION, mpm="event", modules=(),
                  host=LOCAL):
    """A web server named `name` with backup on: a SessionBackupNode for each of `nodes` (objects
    with a `queries` endpoint, such as rss_node_fixture.RssNode), SessionBackupServerId `name`, and
    `extra`, more server-wide directives."""
    lines = ["SessionBackup On"] + [f"SessionBackupNode {n.queries}" for n in nodes]
    lines += [f"SessionBackupServerId {name}", extra]
    return Httpd(site, server_wide="\n".join(lines), mpm=mpm, name=name, modules=modules,
                 host=host)


class SeenFrom:
    """`server` as a client on another host sees it: Browser(SeenFrom(client, server)) makes
    its requests from `client`'s network (a tests/cluster host)."""

    def __init__(self, client, server):
        self.client = client
        self.server = server

    def request(self, path, headers=None, timeout=30, method="GET", body=None):
        return self.server.request(path, headers, timeout, method, body, client=self.client)


def count_of(text):
    """The count a /app/counter answer shows, or None."""
    m = re.search(r"count=(\d+)", text)
    return int(m.group(1)) if m else None


class Browser:
    """A client that keeps cookies the way a browser would (name=value, latest wins)."""

    def __init__(self, server):
        self.server = server
        self.cookies = {}

    def get(self, path, headers=None, method="GET", body=None):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        status, resp_headers, text = self.server.request(path, headers=h, method=method, body=body)
        for k, v in resp_headers:
            if k.lower() == "set-cookie":
                self.take_cookie(v)
        return status, resp_headers, text

    def take_cookie(self, header):
        pair, _, attrs = header.partition(";")
        name, _, value = pair.strip().partition("=")
        attrs_l = attrs.lower()
        if "max-age=0" in attrs_l or "expires=thu, 01-jan-1970" in attrs_l or not value:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    def session_key(self):
        """The 16-byte key of the session this browser holds under the default cookie name."""
        return session_key(self.cookies[COOKIE])
