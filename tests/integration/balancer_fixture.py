"""Load balancers for tests: the real HAProxy, and a front httpd with mod_proxy_balancer, each
running the configuration we ship (conf/haproxy/rhythm.cfg, conf/proxy_balancer/rhythm.conf)
rendered for web servers on 127.0.0.1.

Rendering changes only what has to change (listening addresses, the admin socket, where logs go,
the server lines); every other line of the shipped file is what the tests exercise, so a test
that passes checks the file an administrator copies. A shipped file whose marked lines moved
fails the rendering loudly rather than testing something else.

    web1, web2 = Httpd(backend_site("web1")).start(), Httpd(backend_site("web2")).start()
    with Haproxy([web1, web2]) as lb:          # or ProxyBalancer([web1, web2])
        b = Browser(lb)                         # rhythm_httpd.Browser: keeps cookies
        status, headers, text = b.get("/app/counter")
        served_by(headers)                      # "web1": the backend's X-Backend header
        lb.wait_down("web1", timeout=5)         # as the balancer's own health checks see it

Backends are rhythm_httpd.Httpd objects (their `name` is the server's name and cookie value) or
(name, port) pairs. Every process is started in its own session and stopped by its PID. Set
RHYTHM_KEEP_TMP=1 to keep each balancer's temporary directory (config, log).
"""

import csv
import http.client
import io
import os
import pathlib
import re
import socket
import subprocess
import tempfile
import xml.etree.ElementTree as ET

from rhythm_httpd import (APP_LOCATION, LOCAL, Httpd, ManagedServer, free_port, http_request,
                          wait_for)

HERE = pathlib.Path(__file__).resolve().parent
CONF = HERE.parents[1] / "conf"
HAPROXY_TEMPLATE = CONF / "haproxy" / "rhythm.cfg"
PROXY_BALANCER_TEMPLATE = CONF / "proxy_balancer" / "rhythm.conf"
HAPROXY = os.environ.get("RHYTHM_HAPROXY", "/usr/sbin/haproxy")

# The response header by which a test backend says who it is (see backend_site).
BACKEND_HEADER = "X-Backend"

# The modules a front httpd needs for conf/proxy_balancer/rhythm.conf (mod_watchdog is built
# into Debian's apache2; mod_headers is among rhythm_httpd's base modules).
PROXY_BALANCER_MODULES = ["proxy", "proxy_http", "proxy_balancer", "slotmem_shm",
                          "lbmethod_byrequests", "proxy_hcheck"]


def backend_site(name, extra=""):
    """Site text for a test web server: /app keeps its sessions in Rhythm (so /app/counter
    counts), and every response names the server in the X-Backend header."""
    return f"{APP_LOCATION}\nHeader always set {BACKEND_HEADER} {name}\n{extra}"


def served_by(headers):
    """The backend that served a response (its X-Backend header), or None."""
    for k, v in headers:
        if k.lower() == BACKEND_HEADER.lower():
            return v
    return None


def restart_on_port(site, port, name, **kw):
    """A new Httpd (new directory, empty memory) on a given port, e.g. where a crashed one ran."""
    h = Httpd(site, name=name, **kw)
    h.port = port
    h.write_config(site, kw.get("modules", ()), kw.get("server_wide", ""))
    return h.start()


def _accepts(port, address="127.0.0.1"):
    try:
        socket.create_connection((address, port), timeout=1).close()
        return True
    except OSError:
        return False


def _backend_list(backends):
    """[(name, address, port)] of Httpd objects (on their host) or (name, port) pairs (on
    127.0.0.1)."""
    out = []
    for b in backends:
        if isinstance(b, Httpd):
            out.append((b.name, b.host.address, b.port))
        else:
            name, port = b
            out.append((name, "127.0.0.1", int(port)))
    names = [n for n, _, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"backend names must differ: {names}")
    return out


def _replace_block(text, begin, end, make_lines):
    """Replaces the lines strictly between the marker lines `begin` and `end` with
    make_lines(first line of the block)."""
    lines = text.split("\n")
    starts = [i for i, l in enumerate(lines) if l.strip() == begin]
    ends = [i for i, l in enumerate(lines) if l.strip() == end]
    if len(starts) != 1 or len(ends) != 1 or ends[0] <= starts[0] + 1:
        raise ValueError(f"the template needs one '{begin}' ... '{end}' block with a line in it")
    s, e = starts[0], ends[0]
    return "\n".join(lines[:s + 1] + make_lines(lines[s + 1]) + lines[e:])


def _sub_once(pattern, repl, text, what, count=1):
    new, n = re.subn(pattern, repl, text, flags=re.M)
    if n != count:
        raise ValueError(f"rendering the template: expected {count} {what}, found {n}")
    return new


def render_haproxy(template, backends, front_port, stats_port, socket_path, as_root=None,
                   address="127.0.0.1"):
    """conf/haproxy/rhythm.cfg for `backends` [(name, address, port)]: the frontend on
    address:front_port, the stats page on address:stats_port, the admin socket at socket_path,
    logs to stderr. chroot/user/group stay when running as root, and go otherwise (they need
    root)."""
    if as_root is None:
        as_root = os.geteuid() == 0
    text = template

    def servers(first):
        m = re.fullmatch(r"(\s*server\s+)(\S+)\s+(\S+)(.*)", first)
        if not m or not re.search(r"\bcookie\s+\S+", m.group(4)):
            raise ValueError(f"unexpected first server line: {first!r}")
        return [f"{m.group(1)}{name} {host}:{port}"
                + re.sub(r"\bcookie\s+\S+", f"cookie {name}", m.group(4))
                for name, host, port in backends]

    text = _replace_block(text, "# BEGIN servers", "# END servers", servers)
    text = _sub_once(r"^(\s*stats socket\s+)\S+", rf"\g<1>{socket_path}", text, "stats socket")
    # The first `log` line goes to stderr, the others go.
    text = _sub_once(r"^(\s*)log /dev/log local0$", r"\1log stderr format raw local0 info", text,
                     "log /dev/log local0")
    text = re.sub(r"^\s*log /dev/log .*\n", "", text, flags=re.M)
    if not as_root:
        text = _sub_once(r"^\s*(chroot|user|group)\s.*\n", "", text, "chroot/user/group", 3)
    text = _section_bind(text, "frontend rhythm_http", f"{address}:{front_port}")
    text = _section_bind(text, "listen stats", f"{address}:{stats_port}")
    return ("# rendered by tests/integration/balancer_fixture.py from conf/haproxy/rhythm.cfg\n"
            + text)


def _section_bind(text, section, address):
    """Sets the address of the one `bind` line of an HAProxy section."""
    out, current, n = [], None, 0
    for line in text.split("\n"):
        if line and not line[0].isspace() and not line.startswith("#"):
            current = line.strip()
        m = re.fullmatch(r"(\s+bind\s+)(\S+)(.*)", line)
        if current == section and m:
            line = f"{m.group(1)}{address}{m.group(3)}"
            n += 1
        out.append(line)
    if n != 1:
        raise ValueError(f"rendering the template: expected one bind line in '{section}', "
                         f"found {n}")
    return "\n".join(out)


def render_proxy_balancer(template, backends):
    """conf/proxy_balancer/rhythm.conf for `backends` [(name, address, port)]."""

    def members(first):
        m = re.fullmatch(r'(\s*BalancerMember\s+)"?http://[^"\s]+"?(.*)', first)
        if not m or not re.search(r"\broute=\S+", m.group(2)):
            raise ValueError(f"unexpected first BalancerMember line: {first!r}")
        return [f'{m.group(1)}"http://{host}:{port}"'
                + re.sub(r"\broute=\S+", f"route={name}", m.group(2))
                for name, host, port in backends]

    text = _replace_block(template, "# BEGIN members", "# END members", members)
    return ("# rendered by tests/integration/balancer_fixture.py from "
            "conf/proxy_balancer/rhythm.conf\n" + text)


class _Balancer(ManagedServer):
    """What both balancers offer: a URL, requests (the same call as Httpd.request, so that
    rhythm_httpd.Browser works on a balancer), and the balancer's own view of its backends."""

    port = None
    host = LOCAL

    @property
    def url(self):
        return f"http://{self.host.address}:{self.port}"

    def request(self, path, headers=None, timeout=30, method="GET", body=None, client=None):
        """A request from `client` (a host; by default the balancer's own)."""
        return (client or self.host).call(http_request, self.port, path, headers, timeout,
                                          method, body, self.host.address)

    def states(self):
        """{backend name: True if the balancer would send it traffic}."""
        raise NotImplementedError

    def route_of(self, cookies):
        """The backend a browser's cookies ({name: value}) stick it to, or None."""
        value = cookies.get(self.cookie_name)
        # mod_proxy_balancer reads the route after the first dot (ROUTEID=.web1).
        return value.split(".", 1)[1] if value and "." in value else value

    def _wait_states(self, condition, timeout, what):
        """Polls states() until condition(states) holds; a failed poll (the status page busy or
        restarting) counts as not yet, and the last error is in the timeout's message."""
        last = {}

        def check():
            try:
                last["states"] = self.states()
            except (OSError, ET.ParseError) as e:
                last["states"] = f"error: {e!r}"
                return False
            return condition(last["states"])

        try:
            wait_for(check, timeout, f"{self.kind} to see {what}", interval=0.05)
        except TimeoutError as e:
            raise TimeoutError(f"{e} (last seen: {last.get('states')})") from None

    def wait_down(self, name, timeout):
        self._wait_states(lambda st: st.get(name) is False, timeout, f"{name} down")

    def wait_up(self, name, timeout):
        self._wait_states(lambda st: st.get(name) is True, timeout, f"{name} up")

    def wait_all_up(self, timeout):
        self._wait_states(lambda st: all(st.get(n) for n, _, _ in self.backends), timeout,
                          "every backend up")



class Haproxy(_Balancer):
    """The real haproxy, in the foreground (-db), running conf/haproxy/rhythm.cfg rendered for
    `backends` with its frontend and stats page on free ports of `host` (127.0.0.1, or a
    tests/cluster host) and its admin socket in its temporary directory. Its log (stderr) is
    haproxy.log there."""

    kind = "haproxy"

    def __init__(self, backends, template=HAPROXY_TEMPLATE, name="haproxy", host=LOCAL):
        self.name = name
        self.host = host
        self.backends = _backend_list(backends)
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"rhythm-{name}-"))
        os.chmod(self.dir, 0o755)
        self.template = pathlib.Path(template).read_text()
        self.socket_path = self.dir / "admin.sock"
        self.conf = self.dir / "haproxy.cfg"
        self.log_path = self.dir / "haproxy.log"
        self.proc = None
        self._log_file = None
        self._pick_ports()

    def _pick_ports(self):
        self.port = self.host.call(free_port, self.host.address)
        self.stats_port = self.host.call(free_port, self.host.address)
        self.conf.write_text(render_haproxy(self.template, self.backends, self.port,
                                            self.stats_port, self.socket_path,
                                            address=self.host.address))

    @property
    def cookie_name(self):
        """The sticky cookie, as the configuration's `cookie NAME insert` says."""
        return re.search(r"^\s*cookie\s+(\S+)\s+insert", self.conf.read_text(), re.M).group(1)

    @property
    def stats_url(self):
        return f"http://127.0.0.1:{self.stats_port}/"

    def stats_auth(self):
        """(user, password) of the stats page, as the configuration says."""
        m = re.search(r"^\s*stats auth (\S+?):(\S+)", self.conf.read_text(), re.M)
        return (m.group(1), m.group(2)) if m else None

    def config_test(self):
        """`haproxy -c` on the rendered config: (exit code, output)."""
        p = subprocess.run([HAPROXY, "-c", "-f", str(self.conf)], capture_output=True, text=True,
                           timeout=60)
        return p.returncode, p.stdout + p.stderr

    def start(self, timeout=20, attempts=3):
        """Starts haproxy and waits until it listens and its checks see every backend UP. A port
        that another process took since free_port() chose it means new ports and another try."""
        for attempt in range(attempts):
            try:
                return self._start_once(timeout)
            except RuntimeError as e:
                if "Address already in use" not in str(e) or attempt + 1 == attempts:
                    raise
                self._pick_ports()

    def restart_listening(self, timeout=20):
        """Starts haproxy again on its ports after it was killed, and waits until it listens
        only: some of its backends may be down (a fault campaign)."""
        return self._start_once(timeout, self._listening)

    def _start_once(self, timeout, ready=None):
        rc, out = self.config_test()
        if rc != 0:
            raise RuntimeError(f"haproxy -c refused {self.conf}:\n{out}")
        self._log_file = open(self.log_path, "ab")
        self.proc = self.host.popen([HAPROXY, "-db", "-f", str(self.conf)],
                                    stdin=subprocess.DEVNULL, stdout=self._log_file,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(ready or self._ready, timeout,
                     f"haproxy to listen on {self.port} and see its backends")
        except (TimeoutError, RuntimeError) as e:
            self.stop()
            raise RuntimeError(f"haproxy did not start ({e}):\n{self.log_text()}")
        return self

    def _listening(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"haproxy exited with {self.proc.returncode}")
        return self.host.call(_accepts, self.port, self.host.address)

    def _ready(self):
        if not self._listening():
            return False
        try:
            # Exactly "UP": a server not checked yet shows "UP 1/2" (check status INI).
            status = self.server_status()
            return all(status.get(n) == "UP" for n, _, _ in self.backends)
        except OSError:
            return False

    def command(self, line):
        """One command on the admin socket (`show stat`, `disable server rhythm_web/web1`...)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.socket_path))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")

    def stats(self):
        """`show stat` as a list of dicts (pxname, svname, status, check_status, ...)."""
        text = self.command("show stat")
        if text.startswith("# "):
            text = text[2:]
        return list(csv.DictReader(io.StringIO(text)))

    def server_status(self):
        """{server name: HAProxy's status string ("UP", "DOWN", "UP 1/2", "MAINT", ...)} for
        the backend that holds the servers."""
        names = {n for n, _, _ in self.backends}
        return {row["svname"]: row["status"] for row in self.stats()
                if row.get("svname") in names}

    def states(self):
        # "UP 1/2" (one check failed, not yet down) still takes traffic; "DOWN 1/2" does not.
        return {n: s.startswith("UP") for n, s in self.server_status().items()}

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, timeout=20):
        self.end_process(timeout)
        self.proc = None
        if self._log_file:
            self._log_file.close()
            self._log_file = None


class KeepAlive:
    """Requests on one kept-alive connection to a balancer, as a real browser sends them (the
    balancer may then reuse its own idle connections to the servers). Give it to
    rhythm_httpd.Browser: Browser(KeepAlive(lb)). `connections` counts the connections opened:
    1 as long as the balancer never closed the browser's connection."""

    def __init__(self, balancer, timeout=30):
        self.balancer = balancer
        self.timeout = timeout
        self.conn = None
        self.connections = 0

    def request(self, path, headers=None, timeout=None, method="GET", body=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.balancer.port,
                                                   timeout=timeout or self.timeout)
            self.connections += 1
        self.conn.request(method, path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        out = resp.status, resp.getheaders(), resp.read().decode(errors="replace")
        if resp.will_close:
            self.close()
        return out

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class _FrontHttpd(Httpd):
    """An Httpd that serves no page of its own: rhythm_httpd's base config maps the test pages
    (/app/counter...) with LuaMapHandler, whose handler runs before mod_proxy's and would answer
    /app/counter on the front itself."""

    def write_config(self, site, modules, server_wide):
        super().write_config(site, modules, server_wide)
        text = self.conf.read_text()
        self.conf.write_text(re.sub(r"(?m)^LuaMapHandler .*\n", "", text))


class ProxyBalancer(_Balancer):
    """A front httpd (rhythm_httpd.Httpd with the proxy modules) running
    conf/proxy_balancer/rhythm.conf rendered for `backends`, on a free 127.0.0.1 port. Its
    balancer-manager (?xml=1) tells which members are usable."""

    kind = "mod_proxy_balancer"

    def __init__(self, backends, template=PROXY_BALANCER_TEMPLATE, name="front"):
        self.name = name
        self.backends = _backend_list(backends)
        self.site = render_proxy_balancer(pathlib.Path(template).read_text(), self.backends)
        self.httpd = _FrontHttpd(self.site, modules=PROXY_BALANCER_MODULES, name=name)
        self.dir = self.httpd.dir
        self.conf = self.httpd.conf

    @property
    def port(self):
        return self.httpd.port

    @property
    def pid(self):
        return self.httpd.pid

    @property
    def cookie_name(self):
        """The sticky cookie, as the configuration's stickysession= says."""
        return re.search(r"\bstickysession=([^\s|]+)", self.conf.read_text()).group(1)

    def config_test(self):
        return self.httpd.config_test()

    def start(self, timeout=20, attempts=3):
        """Starts the front and waits until it answers and every member is usable. A port that
        another process took since free_port() chose it means a new port and another try."""
        for attempt in range(attempts):
            try:
                # Httpd.start waits for /index.html, which the front proxies to a backend.
                self.httpd.start(timeout)
                break
            except RuntimeError as e:
                if "Address already in use" not in str(e) or attempt + 1 == attempts:
                    self.cleanup()
                    raise
                self.httpd.port = free_port()
                self.httpd.write_config(self.site, PROXY_BALANCER_MODULES, "")
        try:
            self.wait_all_up(timeout)
        except TimeoutError:
            self.cleanup()
            raise
        return self

    def members(self):
        """The balancer-manager's view: a list of dicts (name, route, status, elected...) per
        member; status is mod_proxy's flag string, e.g. "Init Ok ", "Init HcFl ", "Init Err "."""
        # The manager ignores every parameter (xml too) unless the Referer names this server.
        status, _, body = self.request("/balancer-manager?xml=1", timeout=5,
                                       headers={"Referer": f"{self.url}/balancer-manager"})
        if status != 200:
            raise OSError(f"balancer-manager answered {status}")
        ns = {"h": "http://httpd.apache.org"}
        out = []
        for w in ET.fromstring(body).iterfind(".//h:worker", ns):
            out.append({child.tag.split("}")[1]: (child.text or "") for child in w})
        return out

    def states(self):
        # mod_proxy appends "Ok" to the flags exactly when the member is usable.
        return {m["route"]: "Ok" in m["status"].split() for m in self.members()}

    def stop(self, timeout=20):
        self.httpd.stop(timeout)

    def cleanup(self):
        self.httpd.cleanup()

    def log_text(self):
        return self.httpd.log_text()
