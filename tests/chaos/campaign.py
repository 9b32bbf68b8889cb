"""A fault campaign (issue 15): the cluster (3 web servers, 3 rss_nodes with --replicas 2,
HAProxy with the shipped configuration, the clients, each on a host of its own), a workload, a
nemesis on a seeded schedule, then healing, a quiet period and the checker. Prints a summary
table and writes the histories and every server's and node's log to --out.

    build/chaos [--seed N] [--minutes M] [--faults kill-web,cut-web,...] [--clients N]
                [--logins SHARE] [--out DIR]

Half the clients (--logins) log in through mod_auth_form first and must stay logged in.

Exit status: 0 when the checker finds nothing, 1 when it finds a violation, 2 when the campaign
could not run."""

import argparse
import collections
import dataclasses
import datetime
import json
import pathlib
import re
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "integration"))

from balancer_fixture import Haproxy, backend_site  # noqa: E402
from cluster import Cluster, ClusterUnavailable, kill, pause, resume  # noqa: E402
from rhythm_httpd import COOKIE, backed_server, session_key, wait_for  # noqa: E402
from rss_node_fixture import FOUND, RssNode, parse_shard_ranges, shard_of  # noqa: E402
from test_auth_form import AUTH, AUTH_MODULES, with_form_login  # noqa: E402

from chaos import checker, nemesis, workload  # noqa: E402

WEB = ("web-1", "web-2", "web-3")
NODES = ("node-1", "node-2", "node-3")
REPLICAS = 2
QUIET_S = 10.0
# A lag-web or lag-node fault: each way of a connection takes this long, plus up to LAG_JITTER_MS
# at random (tests/cluster/lag.py). Within SessionBackupTimeout (200 ms) and --handover-wait
# (150 ms) for a round trip, but enough to widen every window between a change and the bank.
LAG_MS = 20
LAG_JITTER_MS = 20


class Bank:
    """The cluster's servers and nodes, and the faults the nemesis can make on them."""

    def __init__(self, cluster):
        self.cluster = cluster
        # At debug, each node says what it answered each fetch and why (RN0501), as the web
        # servers say what they made of the answers (RS0335): a violation's cause is in the logs.
        self.nodes = {n: RssNode(n, extra=["--replicas", str(REPLICAS), "--log-level", "debug"],
                                 host=cluster[n])
                      for n in NODES}
        for n in self.nodes.values():
            n.peers = [o.queries for o in self.nodes.values() if o is not n]
        self.web = {}
        self.retired = []
        self.balancer = None  # set once it runs
        self.paused = set()  # the servers and nodes stopped by pause-web and pause-node now

    def start(self):
        for n in self.nodes.values():
            n.start()
        for name in WEB:
            self.web[name] = self._web_server(name, self.cluster[name]).start()
        return self

    def _web_server(self, name, host):
        """A web server of the bank, not started: the counter pages and the form login."""
        return with_form_login(backed_server(name, list(self.nodes.values()), site=_site(name),
                                             modules=AUTH_MODULES, host=host))

    def server_logs(self):
        """{web server name: the log of each server of that name that ran, killed ones first}."""
        logs = collections.defaultdict(list)
        for server in self.retired + list(self.web.values()):
            logs[server.name].append(server.log_text())
        return logs

    def save_logs(self, directory):
        """Every web server's and node's log, for reading a violation's story: NAME.log, and
        NAME.N.log for the Nth server of that name killed and started again."""
        directory.mkdir(parents=True, exist_ok=True)
        for node in self.nodes.values():
            (directory / f"{node.name}.log").write_text(node.log_path.read_text(errors="replace"))
        runs = collections.Counter()
        for server in self.retired:
            runs[server.name] += 1
            (directory / f"{server.name}.{runs[server.name]}.log").write_text(server.log_text())
        for server in self.web.values():
            (directory / f"{server.name}.log").write_text(server.log_text())

    def _restart_web(self, name):
        """The killed server starts again, empty (a new directory), on its port."""
        old = self.web[name]
        new = self._web_server(name, old.host)
        self.retired.append(old)  # its log, until the campaign ends
        new.port = old.port
        new.write_config(_site(name), AUTH_MODULES, _server_wide(name, self.nodes.values()))
        self.web[name] = new.start()

    def inject(self, kind, target):
        """Makes the fault; returns what heals it."""
        c = self.cluster
        if kind == "kill-web":
            self.web[target].kill()
            self.paused.discard(target)  # it starts again, running
            return lambda: self._restart_web(target)
        if kind == "pause-web":
            return self._pause(target, self.web[target].pid, group=True)
        if kind == "restart-web":
            # A graceful restart asks the server first: a paused one would hold the nemesis
            # until that request timed out (seed 50: 30 s, every other fault held as long).
            self._not_paused(target)
            self.web[target].graceful()
            return lambda: None
        if kind == "cut-web":
            return c.partition(c[target], [c[n] for n in NODES], both_ways=True).heal
        if kind in ("kill-node", "stop-node", "pause-node"):
            node = self.nodes[target]
            # Down already (a kill or stop not healed yet): a second one would start it twice
            # when both heal, and the second start, which cannot bind, would be the process the
            # next faults aim at (seeds 51, 56).
            if node.proc is None:
                raise RuntimeError("the node is down already")
        if kind == "kill-node":
            node.kill()
            self.paused.discard(target)
            return lambda: node.start()
        if kind == "stop-node":
            # A clean stop of a paused node would be a kill 10 s later (seed 51).
            self._not_paused(target)
            node.stop()
            return lambda: node.start()
        if kind == "pause-node":
            return self._pause(target, node.pid)
        if kind == "cut-node":
            others = [h for name, h in c.hosts.items() if name != target]
            return c.partition(c[target], others, both_ways=True).heal
        if kind == "loss":
            return c.lose([c[w] for w in WEB], [c[n] for n in NODES], 30, both_ways=True).heal
        if kind == "lag-web":
            return c.lag(c[target], [c[n] for n in NODES], LAG_MS, LAG_JITTER_MS).heal
        if kind == "lag-node":
            others = [c[h] for h in WEB + NODES if h != target]
            lags = [c.lag(others, c[target], LAG_MS, LAG_JITTER_MS),
                    c.lag(c[target], [c[n] for n in NODES if n != target], LAG_MS,
                          LAG_JITTER_MS)]
            return lambda: [lag.heal() for lag in lags]
        if kind == "kill-balancer":
            kill(self.balancer.proc.pid, group=True)
            self.balancer.proc.wait(10)
            return lambda: self.balancer.restart_listening()
        if kind == "pause-balancer":
            pid = self.balancer.proc.pid
            pause(pid, group=True)
            return lambda: resume(pid, group=True)
        raise ValueError(f"unknown fault {kind}")

    def _pause(self, target, pid, group=False):
        pause(pid, group=group)
        self.paused.add(target)

        def heal():
            self.paused.discard(target)
            resume(pid, group=group)
        return heal

    def _not_paused(self, target):
        if target in self.paused:
            raise RuntimeError("it is paused")

    def copies(self, key):
        """{node: (version, count)} from every node that owns the session's shard."""
        out = {}
        for node in self.nodes.values():
            status = node.status()
            owned = parse_shard_ranges(status["shards_owned_list"])
            if shard_of(key) in owned:
                reply = node.fetch(key)
                if reply.get("status") == FOUND:
                    m = re.search(rb"count=(\d+)", reply["data"])
                    out[node.name] = (reply["version"], int(m.group(1)) if m else None)
                else:
                    out[node.name] = (None, None)
        return out

    def acknowledged(self, server):
        st = server.status()
        return st["RhythmBackupPending"] == 0 and st["RhythmBackupOldestUnacknowledgedMs"] == 0

    def close(self):
        for w in list(self.web.values()) + self.retired:
            w.cleanup()
        for n in self.nodes.values():
            n.cleanup()


def _site(name):
    return backend_site(name, extra=AUTH)


def _server_wide(name, nodes):
    """backed_server's server-wide lines, to write a restarted server's config again."""
    return "\n".join(["SessionBackup On"] + [f"SessionBackupNode {n.queries}" for n in nodes] +
                     [f"SessionBackupServerId {name}", ""])


def run(seed, minutes, kinds, clients, out, log=print, misroute=0.1, logins=0.5):
    """One campaign; returns (checker.Report, the faults, the summary text). `logins`: the share
    of clients that log in first."""
    seconds = minutes * 60
    faults = nemesis.schedule(seed, seconds, kinds, list(WEB), list(NODES))
    hosts = list(WEB) + list(NODES) + ["balancer", "client"]
    with Cluster(hosts) as cluster:
        if any(kind.startswith("lag-") for kind in kinds):
            # Before any connection is made: only new connections go through the relays.
            cluster.enable_lag(list(WEB) + list(NODES))
        bank = Bank(cluster)
        balancer = None
        try:
            bank.start()
            balancer = bank.balancer = Haproxy(list(bank.web.values()),
                                               host=cluster["balancer"]).start()
            for server in bank.web.values():
                wait_for(lambda: server.status()["RhythmBackupNodesUp"] == len(NODES), 15,
                         f"{server.name} to see every node")
            wait_until_settled(log)
            stop = threading.Event()
            t0 = time.monotonic()
            stamp = lambda text: log(f"[{time.monotonic() - t0:7.2f}] {text}")  # noqa: E731
            # The clients ask web servers by name directly: give them the current objects.
            direct = [_Direct(bank, name) for name in WEB]
            threads = [workload.Client(i, cluster["client"], balancer, direct, seed * 1000 + i,
                                       stop, misroute=misroute, logs_in=i < clients * logins)
                       for i in range(clients)]
            for t in threads:
                t.start()
            nem = nemesis.Nemesis(bank, faults, t0, stamp)
            nem.start()
            nem.join(seconds + 60)
            nem.heal()
            end = time.monotonic()
            stamp("healed; quiet")
            time.sleep(QUIET_S)
            stop.set()
            for t in threads:
                t.join(30)
            for server in bank.web.values():
                wait_for(lambda: bank.acknowledged(server), 30, f"{server.name} acknowledged")
            finals = {}
            for t in threads:
                if COOKIE in t.cookies:
                    finals[t.number] = bank.copies(session_key(t.cookies[COOKIE]))
            histories = {t.number: t.history for t in threads}
            wall_minus_monotonic = time.time() - time.monotonic()
            note_reconnections(faults, bank.server_logs(), wall_minus_monotonic)
            report = checker.check(histories, faults, end, finals, REPLICAS)
        finally:
            if balancer is not None:
                balancer.cleanup()
            if out is not None:
                bank.save_logs(out / "logs")
            bank.close()
    summary = summarize(report, faults, seed, minutes)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "history.jsonl", "w") as f:
            for client, history in sorted(histories.items()):
                for r in history:
                    f.write(json.dumps(dataclasses.asdict(r)) + "\n")
        (out / "faults.json").write_text(json.dumps([dataclasses.asdict(f) for f in faults],
                                                    indent=1))
        (out / "report.txt").write_text(checker.describe(report) + "\n" + summary + "\n")
        if report.violations:
            (out / "story.txt").write_text(story(report, out / "logs", wall_minus_monotonic))
    return report, faults, summary


# The workload starts once the machine is no longer saturated: by the cluster's start-up, or by
# what the test before left exiting (CI runs the tests one after the other). A machine busier
# than it has cores starves the agents (niced), and a take-over that waits for a handover a
# starved agent answers after the web server's deadline is a 503 with no fault active: perhaps
# what CI under ASan met at the start in each of its last runs of the fifteenth round (not
# shown; docs/consistency.md).
SETTLED_BUSY = 0.5  # the share of all cores busy, over SETTLE_WINDOW_S, below which it is settled
SETTLE_WINDOW_S = 0.5
SETTLE_TIMEOUT_S = 30.0


def _cpu_busy_and_total():
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # all but idle and iowait


def wait_until_settled(log):
    """Waits until the machine's cores are less than SETTLED_BUSY busy over SETTLE_WINDOW_S (at
    most SETTLE_TIMEOUT_S: then the workload starts all the same, and says so)."""
    began = time.monotonic()
    while True:
        busy0, total0 = _cpu_busy_and_total()
        time.sleep(SETTLE_WINDOW_S)  # the window measured
        busy1, total1 = _cpu_busy_and_total()
        share = (busy1 - busy0) / max(1, total1 - total0)
        waited = time.monotonic() - began
        if share < SETTLED_BUSY:
            log(f"the machine settled ({share:.0%} busy) {waited:.1f} s after the cluster started")
            return
        if waited > SETTLE_TIMEOUT_S:
            log(f"the machine is still {share:.0%} busy after {waited:.0f} s: the workload starts "
                f"all the same")
            return


# A web server's log line saying its agent counted a node down (RS0308) or up again (RS0306).
NODE_LINE = re.compile(r"(?:RS0306|RS0308): node \S+ \(([^)]+)\) is (up|down)")
# The agent counts a node down once it has not answered for this long (node_timeout_ms).
NODE_TIMEOUT_S = 1.5


def note_reconnections(faults, server_logs, wall_minus_monotonic):
    """Sets each cut-web fault's `reconnected`: when the server's agent counted up again the last
    of the nodes it counted down when the cut healed, by its log (`server_logs`: {name: [log
    text]}).
    A node that a fault of its own touched meanwhile (killed, stopped, paused, cut off, slowed)
    says nothing of the cut, nor one not back within checker.HEAL_GRACE_S; without any other
    node counted down, it is not set (the cut ends when the network healed). Nor does it last
    past the start of a `loss` fault."""
    for f in faults:
        if f.kind != "cut-web" or f.started is None or f.healed is None:
            continue
        touched = {g.target for g in faults if g.kind.endswith("-node") and g.started is not None
                   and g.started <= f.healed + checker.HEAL_GRACE_S and
                   (g.healed is None or g.healed >= f.started - NODE_TIMEOUT_S)}
        events = sorted((_line_time(line) - wall_minus_monotonic, m.group(1), m.group(2))
                        for text in server_logs.get(f.target, []) for line in text.splitlines()
                        for m in [NODE_LINE.search(line)] if m and _line_time(line) is not None)
        # Down when the network healed (counted down in this cut, or in one before it that this
        # one overlapped), or counted down just after, silent since before.
        state_at_heal = {node: state for t, node, state in events if t <= f.healed}
        lost = {node for node, state in state_at_heal.items() if state == "down"}
        lost |= {node for t, node, state in events
                 if state == "down" and f.healed < t <= f.healed + NODE_TIMEOUT_S}
        lost -= touched
        back = [min((t for t, node, state in events
                     if node == lost_node and state == "up" and t > f.healed), default=None)
                for lost_node in lost]
        back = [t for t in back if t is not None and t <= f.healed + checker.HEAL_GRACE_S]
        if back:
            # Packet loss on every link that began meanwhile keeps it away too, but G1 does not
            # excuse loss: the cut ends where the loss began.
            loss = [g.started for g in faults if g.kind == "loss" and g.started is not None and
                    g.started <= max(back) and (g.healed is None or g.healed >= f.healed)]
            f.reconnected = max(f.healed, min([max(back)] + loss))


# The time at the head of a web server's log line (local time), and of a node's (UTC).
SERVER_LINE_TIME = re.compile(r"^\[\w{3} (\w{3} \d{2} [\d:.]+ \d{4})\]")
NODE_LINE_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T[\d:.]+)Z ")
STORY_BEFORE_S = 0.5
STORY_AFTER_S = 0.2
STORY_MAX_LINES = 300


def _line_time(line):
    m = SERVER_LINE_TIME.match(line)
    if m:
        return datetime.datetime.strptime(m.group(1), "%b %d %H:%M:%S.%f %Y").timestamp()
    m = NODE_LINE_TIME.match(line)
    if m:
        return datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    return None


def story(report, logs_dir, wall_minus_monotonic):
    """For each violation, the lines of every log in `logs_dir` from STORY_BEFORE_S before its
    first request to STORY_AFTER_S after its last, in time order: what the nodes answered the
    fetches (RN0501, the campaign runs them at debug) and what the servers made of them (RS0335),
    so that a violation met in CI can be traced after its logs are gone."""
    logs = {path.stem: path.read_text(errors="replace").splitlines()
            for path in sorted(logs_dir.glob("*.log"))}
    out = []
    for v in report.violations:
        first = min(r.start for r in v.requests) - STORY_BEFORE_S + wall_minus_monotonic
        last = max(r.end for r in v.requests) + STORY_AFTER_S + wall_minus_monotonic
        lines = sorted((t, name, line) for name, text in logs.items() for line in text
                       for t in [_line_time(line)] if t is not None and first <= t <= last)
        out.append(f"{v.rule} client {v.client}: {v.what}: {len(lines)} log line(s) from "
                   f"{first - wall_minus_monotonic:.3f} to {last - wall_minus_monotonic:.3f}")
        for t, name, line in lines[:STORY_MAX_LINES]:
            out.append(f"  {t - wall_minus_monotonic:.3f} {name}: {line}")
        if len(lines) > STORY_MAX_LINES:
            out.append(f"  ... {len(lines) - STORY_MAX_LINES} more in {logs_dir}")
    return "\n".join(out) + "\n"


class _Direct:
    """A web server by name, whichever Httpd object runs it now (a killed one is replaced)."""

    def __init__(self, bank, name):
        self.bank = bank
        self.name = name

    def request(self, *args, **kwargs):
        return self.bank.web[self.name].request(*args, **kwargs)


def summarize(report, faults, seed, minutes):
    injected = collections.Counter(f.kind for f in faults if f.started is not None)
    losses = collections.Counter(loss.fault for loss in report.losses)
    rows = [f"seed {seed}, {minutes} min: {report.requests} requests, {report.answered} "
            f"answered, {len(report.violations)} violation(s)",
            f"{'fault':14} {'injected':>8} {'failures':>8} {'losses':>6}"]
    for kind in sorted(set(injected) | set(report.failures)):
        rows.append(f"{kind:14} {injected.get(kind, 0):8} {report.failures.get(kind, 0):8} "
                    f"{losses.get(kind, 0):6}")
    back = sorted(f.reconnected - f.healed for f in faults if f.reconnected is not None)
    if back:
        cuts = sum(1 for f in faults if f.kind == "cut-web" and f.healed is not None)
        rows.append(f"cut-web: the server reached its nodes again {back[0]:.2f} to {back[-1]:.2f} s "
                    f"after the network healed ({len(back)} of {cuts} cuts)")
    by_rule = collections.Counter(v.rule for v in report.violations)
    rows.append("violations: " + (", ".join(f"{r} {n}" for r, n in sorted(by_rule.items()))
                                  or "none"))
    return "\n".join(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--faults", default=",".join(nemesis.FAULTS))
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--logins", type=float, default=0.5,
                   help="the share of clients that log in first (0 to 1)")
    p.add_argument("--out", type=pathlib.Path)
    args = p.parse_args(argv)
    kinds = [k for k in args.faults.split(",") if k]
    unknown = set(kinds) - set(nemesis.FAULTS)
    if unknown or not kinds:
        p.error(f"--faults: unknown {sorted(unknown)}; known: {','.join(nemesis.FAULTS)}")
    out = args.out or pathlib.Path(tempfile.mkdtemp(prefix=f"rhythm-chaos-{args.seed}-"))
    try:
        report, _, summary = run(args.seed, args.minutes, kinds, args.clients, out,
                                 logins=args.logins)
    except ClusterUnavailable as e:
        print(f"chaos: cannot make a cluster here: {e}", file=sys.stderr)
        return 2
    text = checker.describe(report)
    if text:
        print(text)
    print(summary)
    print(f"histories, faults and report: {out}"
          + (f"; the logs around each violation: {out / 'story.txt'}" if report.violations else ""))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
