"""What one hostile client can make an rss_node hold (issue 16): a message whose last frame never
comes, thousands of connections, handshakes never finished, heartbeats never answered. Each
attack runs from a host of its own (tests/cluster) against a real rss_node, while real web servers
on other hosts back up and fail over through it; each asserts the bound, the log line and the
counter, and that the legitimate traffic beside it went on. An ipc:// endpoint, which those
measures cannot watch, admits the node's user and group only."""

import concurrent.futures
import grp
import re
import stat
import subprocess
import time

import zmq

import zmtp_raw
from rhythm_httpd import Browser, SeenFrom, backed_server, wait_for
from rss_node_fixture import NOT_FOUND, RssNode, context_on, new_key, now_ms, pinging
from test_backup import count_of
from test_cluster import acknowledged, cluster

MiB = 1 << 20


def memory_kib(pid, field):
    """VmRSS or VmHWM of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def sanitized(pid):
    """Whether the process runs under AddressSanitizer, whose allocator keeps freed memory in
    quarantine rather than give it back: memory coming back is checked without it only."""
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def lines(node, code):
    return [line for line in node.log_text().splitlines() if code in line]


def user_counts(user, start, times, durations=None):
    """The user counts `times` more from `start`; each request's time goes into `durations`."""
    for i in range(start + 1, start + times + 1):
        began = time.monotonic()
        status, _, text = user.get("/app/counter")
        if durations is not None:
            durations.append(time.monotonic() - began)
        assert (status, count_of(text)) == (200, i)
    return start + times


def test_unfinished_messages_are_hung_up_on_and_bounded_while_sessions_go_on():
    """Eight connections, four to each of the node's sockets, send 1 MiB frames with the MORE
    flag and never a last one, up to 256 MiB each (2 GiB in all; before the bound, the node grew
    by all it was sent). Each must be hung up on, the node must grow by a small part of it, say
    so (RN0403, connections_dropped), and a user's counting on a web server, backed up by the
    same node, must go on and survive a failover."""
    with cluster("node-1", "web-a", "web-b", "client", "attacker") as c:
        node = RssNode("node-1", extra=["--replicas", "1"], host=c["node-1"])
        with node, backed_server("web-a", [node], host=c["web-a"]) as a, \
                backed_server("web-b", [node], host=c["web-b"]) as b:
            user = Browser(SeenFrom(c["client"], a))
            quiet, attacked = [], []
            count = user_counts(user, 0, 20, quiet)
            wait_for(lambda: acknowledged(a), 10, "the first counts acknowledged")
            lag_before = a.status()["RhythmBackupLagP99Us"]
            before_kib = memory_kib(node.pid, "VmRSS")

            targets = [node.queries_port] * 4 + [node.updates_port] * 4
            kinds = [b"DEALER"] * 4 + [b"PUB"] * 4

            def attack(i):
                s = c["attacker"].call(zmtp_raw.connect, node.host.address, targets[i], kinds[i])
                try:
                    return zmtp_raw.send_unfinished(s, MiB, 256 * MiB)
                finally:
                    s.close()
            with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
                attacks = [pool.submit(attack, i) for i in range(len(targets))]
                count = user_counts(user, count, 20, attacked)  # meanwhile
                sent = [f.result() for f in attacks]
            peak_kib = memory_kib(node.pid, "VmHWM")
            grown_mib = (peak_kib - before_kib) / 1024
            print(f"sent {[s // MiB for s in sent]} MiB; the node grew by {grown_mib:.0f} MiB "
                  f"at most; the user's requests took {max(quiet) * 1000:.1f} ms at most before, "
                  f"{max(attacked) * 1000:.1f} ms during the attack")
            assert all(s < 256 * MiB for s in sent), "a connection was never hung up on"
            # (Under ASan the frames freed stay in its quarantine: the hang-ups are the bound.)
            assert grown_mib < 160 or sanitized(node.pid), f"the node grew by {grown_mib:.0f} MiB"
            st = node.status()
            assert st["connections_dropped"] >= len(targets)
            assert len(lines(node, "RN0403")) >= len(targets)
            assert re.search(r"RN0403: hung up on 10\.77\.0\.\d+:\d+ \((queries|updates) "
                             r"socket\): it held \d+ bytes of a message it never finished",
                             node.log_text())
            # The legitimate traffic went on: acknowledged, and the user moves to B.
            wait_for(lambda: acknowledged(a), 10, "every count acknowledged")
            print(f"backup lag p99: {lag_before} us before, "
                  f"{a.status()['RhythmBackupLagP99Us']} us after the attack")
            user.server = SeenFrom(c["client"], b)
            count = user_counts(user, count, 1)
            # And the memory the attack took is given back.
            if not sanitized(node.pid):
                wait_for(lambda: memory_kib(node.pid, "VmRSS") < before_kib + 32 * 1024, 10,
                         "the node back to its size before the attack")


def test_connections_are_capped_per_address_and_half_open_or_silent_ones_go():
    """A client opens 300 connections to each socket (libzmq's, which PING each second): the
    node keeps --max-connections-per-address of them and hangs up on the rest (RN0402,
    connections_refused) while a web server on another host still connects and backs up.
    Connections that never finish their handshake, and ones that send nothing (no PING), are
    closed by the node within seconds."""
    with cluster("node-1", "web-a", "client", "attacker") as c:
        node = RssNode("node-1", extra=["--replicas", "1", "--max-connections-per-address", "50"],
                       host=c["node-1"])
        with node:
            context = context_on(c["attacker"])
            sockets = []
            try:
                for endpoint, kind in ((node.queries, zmq.DEALER), (node.updates, zmq.PUB)):
                    for _ in range(300):
                        s = pinging(context.socket(kind))
                        s.setsockopt(zmq.LINGER, 0)
                        s.connect(endpoint)
                        sockets.append(s)
                wait_for(lambda: node.status()["connections_refused"] >= 500, 20,
                         "the connections over the cap refused")
                st = node.status()
                assert st["connections_updates"] == 50
                assert st["connections_queries"] <= 50 + 1  # and the test's own requester
                assert lines(node, "RN0402")
                assert "that address has --max-connections-per-address connections" in \
                    node.log_text()
                # A web server on another host is not held out, and backs up.
                with backed_server("web-a", [node], host=c["web-a"]) as a:
                    user = Browser(SeenFrom(c["client"], a))
                    user_counts(user, 0, 3)
                    wait_for(lambda: acknowledged(a), 10, "the counts acknowledged")
            finally:
                for s in sockets:
                    s.close()
                context.term()
            wait_for(lambda: node.status()["connections_updates"] == 0, 10,
                     "the attacker's connections gone")

            # Half-open: connected, no greeting. Silent: past the handshake, then nothing, not
            # even a PING. The node closes both.
            half_open = [c["attacker"].call(zmtp_raw.connect, node.host.address,
                                            node.queries_port, handshake=False)
                         for _ in range(20)]
            silent = [c["attacker"].call(zmtp_raw.connect, node.host.address,
                                         node.updates_port, b"PUB") for _ in range(20)]
            opened = time.monotonic()
            wait_for(lambda: node.status()["connections_updates"] == 20, 5, "silent ones counted")

            def closed_by_node(s):
                s.settimeout(15)
                try:
                    while s.recv(65536):
                        pass  # its greeting and READY
                except OSError:
                    pass  # reset
                return time.monotonic() - opened
            with concurrent.futures.ThreadPoolExecutor(40) as pool:
                times = list(pool.map(closed_by_node, half_open + silent))
            print(f"half-open closed after {max(times[:20]):.1f} s, "
                  f"silent after {max(times[20:]):.1f} s")
            assert max(times[:20]) < 8  # the 5 s handshake limit
            assert max(times[20:]) < 8  # 4 s from which nothing came
            wait_for(lambda: node.status()["connections_updates"] == 0, 5, "all gone")
            assert node.status()["connections_silent"] >= 20
            assert "RN0406" in node.log_text()


def test_a_full_socket_refuses_more_and_memory_comes_back_when_connections_leave():
    """--max-connections 2000: of 2400 idle connections from one client (its address allowed
    them all), the node keeps 2000 and refuses the rest; when they close, the memory they took
    (some 27 KiB each in libzmq) is given back to the system (before the bound: 10,000 idle
    connections took the node from 26 MB to 450 MB, and it stayed there)."""
    with cluster("node-1", "attacker") as c:
        node = RssNode("node-1", host=c["node-1"],
                       extra=["--max-connections", "2000",
                              "--max-connections-per-address", "100000"])
        with node:
            before_kib = memory_kib(node.pid, "VmRSS")
            contexts = [context_on(c["attacker"]) for _ in range(3)]  # 1023 sockets each at most
            sockets = []
            try:
                for context in contexts:
                    for _ in range(800):
                        s = pinging(context.socket(zmq.DEALER))
                        s.setsockopt(zmq.LINGER, 0)
                        s.connect(node.queries)
                        sockets.append(s)
                st = wait_for(lambda: (lambda s: s if s["connections_queries"] == 2000 and
                                       s["connections_refused"] >= 400 else None)(node.status()),
                              30, "2000 connections kept and the rest refused")
                during_kib = memory_kib(node.pid, "VmRSS")
                assert "it has --max-connections connections" in node.log_text()
            finally:
                for s in sockets:
                    s.close()
                for context in contexts:
                    context.term()
            wait_for(lambda: node.status()["connections_queries"] <= 1, 10, "all closed")
            if not sanitized(node.pid):
                wait_for(lambda: memory_kib(node.pid, "VmRSS") < before_kib + 16 * 1024, 10,
                         "the memory given back")
            print(f"node: {before_kib // 1024} MiB, {during_kib // 1024} MiB with 2000 idle "
                  f"connections, {memory_kib(node.pid, 'VmRSS') // 1024} MiB after; "
                  f"{st['connections_refused']} refused")


def test_records_from_the_future_are_refused_counted_and_logged():
    """A plain-text publisher stores a version of 2^64-1 and an expiry 30 years ahead: either
    would never be replaced or expire. The node refuses both (refused_implausible, RN0301 naming
    the publisher, the version and the expiry), and takes the next, ordinary, record."""
    with RssNode("node-1") as node:
        pub = node.publisher(origin="mallory")
        try:
            pub.wait_subscribed()
            top, far, fine = new_key(), new_key(), new_key()
            pub.publish(top, 2 ** 64 - 1, b"forever")
            pub.publish(far, 5, b"decades", expires_at_ms=now_ms() + 30 * 365 * 86400 * 1000)
            pub.publish(fine, (7 << 32) | 3, b"fine")
            wait_for(lambda: node.status()["updates_applied"] == 1, 5, "the ordinary record")
        finally:
            pub.close()
        st = node.status()
        assert st["refused_implausible"] == 2
        assert st["updates_refused"] == 2
        assert node.fetch(top)["status"] == NOT_FOUND
        assert node.fetch(far)["status"] == NOT_FOUND
        assert node.fetch(fine)["version"] == (7 << 32) | 3
        log = node.log_text()
        assert re.search(r"RN0301: refused an update from mallory \(version 18446744073709551615, "
                         r"expiry \d+\): its version's term is over 2\^20", log)
        # Two refusals within 10 s: the second is in the next line's count, not a line of its own.
        assert len(lines(node, "RN0301")) == 1


def test_a_web_server_keeps_what_a_node_finds_implausible_unacknowledged_and_says_so():
    """A node whose --max-session-lifetime (60 s) is shorter than the web server's sessions (the
    30-minute idle timeout): every save is refused. The web server must not count one as
    acknowledged, must count the sessions as unbacked, and must say why (RS0329)."""
    with RssNode("node-1", extra=["--max-session-lifetime", "60s"]) as node, \
            backed_server("web-a", [node]) as a:
        users = [Browser(a) for _ in range(5)]
        for user in users:
            assert user.get("/app/counter")[0] == 200
        wait_for(lambda: node.status()["refused_implausible"] >= 5, 10, "the saves refused")
        wait_for(lambda: "RS0329" in a.log_text(), 10, "the web server saying why")
        st = wait_for(lambda: (lambda s: s if s["RhythmBackupNode1Unacknowledged"] >= 5 and
                               s["RhythmBackupRefusedByNodes"] >= 5 else None)(a.status()),
                      5, "the server's figures for the node")
        assert st["RhythmSessionsUnbacked"] == 5
        assert st["RhythmBackupAcknowledged"] == 0
        assert st["RhythmBackupNode1State"] == "up"
        assert node.status()["sessions"] == 0


class IpcNode(RssNode):
    """An rss_node whose two endpoints are ipc:// socket files in its own directory, running in
    the web servers' group (www-data), as `Group=` of a systemd unit would have it."""

    def start(self, timeout=10):
        self.log_file = open(self.log_path, "ab")
        self.proc = self.host.popen(self.command(), stdout=subprocess.DEVNULL,
                                    stderr=self.log_file, cwd=self.dir, group="www-data")
        return self.wait_until_answering(timeout, f"{self.name} to answer on {self.queries}")

    @property
    def updates(self):
        return f"ipc://{self.dir}/updates.sock"

    @property
    def queries(self):
        return f"ipc://{self.dir}/queries.sock"


def connect_as_nobody(path):
    """The errno name a plain connect to the unix socket `path` gets as user nobody, in no group
    of the node's ("OK" when it connects)."""
    probe = ("import socket, errno, sys\n"
             "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
             "try:\n"
             "    s.connect(sys.argv[1]); print('OK')\n"
             "except OSError as e:\n"
             "    print(errno.errorcode[e.errno])\n")
    done = subprocess.run(["/usr/bin/python3", "-c", probe, str(path)], user="nobody",
                          group="nogroup", extra_groups=[], capture_output=True, text=True,
                          timeout=30)
    return done.stdout.strip()


def test_an_ipc_endpoint_admits_only_the_nodes_user_and_group():
    """The node's measures of unfinished messages and client addresses cannot apply to ipc://
    (the kernel counts no bytes on a unix socket, and every client is "local"): its socket files
    admit the node's user and group only (ipc-mode, 0660), so no other local user can connect.
    A web server that may connect backs up and fails over through them."""
    with IpcNode("ipc-node") as node:
        node.dir.chmod(0o755)  # only the socket files' modes decide
        for name in ("updates.sock", "queries.sock"):
            path = node.dir / name
            assert stat.S_IMODE(path.stat().st_mode) == 0o660
            assert path.stat().st_gid == grp.getgrnam("www-data").gr_gid
            assert connect_as_nobody(path) == "EACCES"
        # The probe can tell: a socket file open to everyone lets nobody in.
        (node.dir / "queries.sock").chmod(0o666)
        assert connect_as_nobody(node.dir / "queries.sock") == "OK"
        (node.dir / "queries.sock").chmod(0o660)

        with backed_server("web-a", [node]) as a, backed_server("web-b", [node]) as b:
            browser = Browser(a)
            for _ in range(3):
                browser.get("/app/counter")
            wait_for(lambda: acknowledged(a), 10, "web-a's changes acknowledged over ipc")
            browser.server = b
            assert count_of(browser.get("/app/counter")[2]) == 4


def test_a_node_refuses_an_abstract_ipc_endpoint_and_a_mode_open_to_others():
    for args, reason in [
            (["--updates", "ipc://@rhythm-updates"], "is an abstract socket"),
            (["--ipc-mode", "0666"], "ipc-mode must be an octal mode")]:
        node = IpcNode("bad-ipc", extra=args)
        try:
            done = subprocess.run(node.command() + ["--check-config"], capture_output=True,
                                  text=True, timeout=30)
            assert done.returncode == 1, done.stdout
            assert reason in done.stderr, done.stderr
        finally:
            node.cleanup()
