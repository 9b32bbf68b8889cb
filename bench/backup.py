"""Write-behind backup benchmarks, each figure printed beside its target, measured in one run:

1. the counter page with backup off and on (two private httpds, one rss_node, wrk with one
   session per connection): rounds alternate off and on, and the figure is the median of each
   pair's on / off ratio, so that a burst of load from a neighbour hits both sides of a pair
   (which side of a pair runs first alternates too); target >= 0.95. Also printed: the
   replication lag the on server saw meanwhile, with the machine saturated, and the backup
   agent's and the node's CPU per request;
2. replication lag, save to acknowledgement, at 5,000 updates/s of 1 KiB sessions (the module's
   segment and backup agent in bench/backup_bench, one rss_node), --lag-runs runs, each printed
   and their median: target p99 <= 5 ms; and the highest rate one web server sustains with p99
   under 50 ms;
3. refill: 100,000 sessions of 1 KiB reach an rss_node that comes back empty: target <= 10 s;
4. failover on a saturated server: 60 sessions made on server B, each requested once on server A
   while wrk saturates A with its own counter page; the time of those requests (each a fetch from
   the bank), with SessionBackupAgentNice at its default on A and at 0. No target: it shows what
   the agent's lower priority costs a failover;
5. the first change after a graceful restart of a prefork server, request to bank, over 10
   restarts: target < 100 ms.

    bench/backup [--seconds 2] [--rounds 16] [--lag-runs 5] [--refill 100000] [--failovers 60]
                 [--restarts 10]
"""

import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import threading
import time

TOP = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("RHYTHM_BUILD_DIR", TOP / "_build"))
sys.path.insert(0, str(TOP / "tests" / "integration"))
sys.path.insert(0, str(TOP / "bench"))
os.environ.setdefault("RHYTHM_MODULE", str(BUILD / "mod_rhythm_session" / "mod_rhythm_session.so"))
os.environ.setdefault("RHYTHM_BUILD_DIR", str(BUILD))

from counter_page import run_wrk, wrk  # noqa: E402
from rhythm_httpd import Browser, Httpd, backed_server, wait_for  # noqa: E402
from rss_node_fixture import RssNode  # noqa: E402

SITE = """
LuaScope thread
LuaCodeCache forever
LuaMapHandler ^/rhythm/counter$ "{pages}/app.lua" counter
<Location /rhythm>
    Session On
    SessionEnv On
    SessionHeader X-Replace-Session
    RhythmSession On
</Location>
"""

BENCH = BUILD / "bench" / "backup_bench"


def verdict(ok):
    return "met" if ok else "NOT met"


def cpu_ticks(pid):
    """User + system CPU ticks of a process, all its threads."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def counter_page(node, seconds, rounds, connections=8):
    off = Httpd(SITE, name="backup-off")
    on = backed_server("backup-on", [node], site=SITE)
    runs = {"off": [], "on": []}
    ratios = []
    with off, on:
        wait_for(lambda: on.status().get("RhythmBackupNodesUp") == 1, 10, "the agent's node")
        agent = on.status()["RhythmBackupAgentPid"]
        for server in (off, on):
            wrk(server.url + "/rhythm/counter", 1, connections)
        agent_ticks, node_ticks = cpu_ticks(agent), cpu_ticks(node.pid)
        for pair in range(rounds):
            for name in ("off", "on") if pair % 2 == 0 else ("on", "off"):
                server = off if name == "off" else on
                runs[name].append(run_wrk(server, "/rhythm/counter", seconds, connections))
            ratios.append(runs["on"][-1]["rps"] / runs["off"][-1]["rps"])
        agent_ticks, node_ticks = cpu_ticks(agent) - agent_ticks, cpu_ticks(node.pid) - node_ticks
        backed = on.status()
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
    ratio = statistics.median(ratios)
    per_request = 1e6 / os.sysconf("SC_CLK_TCK") / sum(r["requests"] for r in runs["on"])
    print(f"1. counter page, {connections} connections, {rounds} pairs of {seconds}s rounds "
          f"(off and on, each first in every other pair):")
    for k in ("off", "on"):
        r = med[k]
        print(f"   backup {k:<4} {r['rps']:>9.0f} requests/s   p99 {r['p99_us'] / 1000:6.2f} ms   "
              f"httpd CPU {r['cpu_us']:6.1f} us/request   failures {int(r['errors'] + r['non200'])}")
    print(f"   on / off of each pair: {' '.join(f'{r:.2f}' for r in ratios)}")
    print(f"   median on / off = {ratio:.2f}   target >= 0.95   {verdict(ratio >= 0.95)}")
    print(f"   backup agent {agent_ticks * per_request:.1f} us and rss_node "
          f"{node_ticks * per_request:.1f} us of CPU per request (the agent's counted in httpd's); "
          f"published {backed['RhythmBackupPublished']}, acknowledged "
          f"{backed['RhythmBackupAcknowledged']}; lag with the machine saturated p50 "
          f"{backed['RhythmBackupLagP50Us'] / 1000:.1f} ms, p99 "
          f"{backed['RhythmBackupLagP99Us'] / 1000:.1f} ms")


# Seconds at the rate before the lag is measured: on this VM a process woken often after an idle
# spell wakes late for the first tenths of a second (the host adapts), which is not the steady
# rate's lag. The warm-up's own lag is printed beside.
LAG_WARMUP_S = 1


def lag_run(node, rate, seconds):
    out = subprocess.run([str(BENCH), "lag", str(rate), str(LAG_WARMUP_S), str(seconds),
                          node.queries],
                         capture_output=True, text=True, timeout=seconds + 120).stdout
    m = re.search(r"RESULT (.*)", out)
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def lag(node, seconds, runs):
    print(f"2. replication lag (save to acknowledgement), 1 KiB sessions, {seconds}s per run "
          f"after {LAG_WARMUP_S}s at the rate (the warm-up's p99, from idle, in brackets):")
    p99s = []
    for _ in range(runs):
        r = lag_run(node, 5000, seconds)
        p99s.append(r["p99_us"])
        print(f"   at {r['rate']:.0f} updates/s: p50 {r['p50_us'] / 1000:.2f} ms, p99 "
              f"{r['p99_us'] / 1000:.2f} ms   (warm-up p99 {r['warmup_p99_us'] / 1000:.2f} ms)")
    p99 = statistics.median(p99s)
    print(f"   median p99 of {runs} runs at 5,000 updates/s: {p99 / 1000:.2f} ms   "
          f"target p99 <= 5 ms   {verdict(p99 <= 5000)}")
    best = 0
    for rate in (10000, 20000, 40000, 80000, 160000):
        r = lag_run(node, rate, seconds)
        ok = r["p99_us"] < 50000 and r["rate"] >= 0.95 * rate and r["settled"] == 1
        print(f"   at {r['rate']:>7.0f} updates/s: p50 {r['p50_us'] / 1000:6.2f} ms, p99 "
              f"{r['p99_us'] / 1000:6.2f} ms   {'under' if ok else 'over'} 50 ms")
        if not ok:
            break
        best = rate
    print(f"   highest rate with p99 under 50 ms: {best} updates/s or more" if best else
          "   no rate above 5,000/s kept p99 under 50 ms")


def refill(node, count):
    bench = subprocess.Popen([str(BENCH), "fill", str(count), node.queries],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert bench.stdout.readline().strip() == "filled"
        node.kill()
        started = time.monotonic()
        node.start()  # empty, on the same ports
        wait_for(lambda: node.status()["sessions"] >= count, 120, "the refill", interval=0.05)
        took = time.monotonic() - started
    finally:
        bench.stdin.close()
        bench.wait(30)
    print(f"3. refill: {count} sessions of 1 KiB reached an rss_node that came back empty in "
          f"{took:.1f} s   target <= 10 s   {verdict(took <= 10)}")


def failover_under_load(node, count):
    print(f"4. failover on a saturated server: {count} sessions made on B, each requested once on "
          f"A while wrk saturates A")
    for nice in ("default", "0"):
        extra = "" if nice == "default" else f"SessionBackupAgentNice {nice}"
        with backed_server(f"failover-a-{nice}", [node], extra, site=SITE) as a, \
                backed_server(f"failover-b-{nice}", [node], site=SITE) as b:
            for server in (a, b):
                wait_for(lambda: server.status().get("RhythmBackupNodesUp") == 1, 10, "the node")
            browsers = [Browser(b) for _ in range(count)]
            for browser in browsers:
                browser.get("/rhythm/counter")
            wait_for(lambda: b.status()["RhythmBackupPending"] == 0 and
                     b.status()["RhythmBackupOldestUnacknowledgedMs"] == 0, 10, "B's sessions in the bank")
            load = threading.Thread(target=wrk, args=(a.url + "/rhythm/counter", 3 + count // 10, 8))
            load.start()
            time.sleep(1)
            took = []
            for browser in browsers:
                browser.server = a
                started = time.monotonic()
                status, _, text = browser.get("/rhythm/counter")
                took.append((time.monotonic() - started) * 1000)
                assert status == 200 and "count=2" in text, text
                time.sleep(0.05)
            load.join()
            took.sort()
            print(f"   SessionBackupAgentNice {nice:<7}: p50 {statistics.median(took):5.1f} ms, p90 "
                  f"{took[int(0.9 * len(took))]:5.1f} ms, max {took[-1]:5.1f} ms "
                  f"({a.status()['RhythmBackupFetched']} fetched from the bank)")


def first_change_after_restart(node, restarts):
    """The first change after each graceful restart of a prefork server, from the request to the
    bank holding it: the new agent publishes to a node once its subscriptions have reached the
    agent's socket. Before, what it sent right after connecting was dropped and waited for the
    re-send a second later."""
    took = []
    with backed_server("restarted", [node], site=SITE, mpm="prefork") as web:
        browser = Browser(web)
        browser.get("/rhythm/counter")
        key = browser.session_key()
        for n in range(2, restarts + 2):
            web.graceful()
            started = time.monotonic()
            browser.get("/rhythm/counter")
            wait_for(lambda: f"count={n}".encode() in node.fetch(key).get("data", b""), 10,
                     "the change in the bank", interval=0.002)
            took.append((time.monotonic() - started) * 1000)
    took.sort()
    print(f"5. the first change after each of {restarts} graceful restarts (prefork), request to "
          f"bank: p50 {statistics.median(took):.1f} ms, max {took[-1]:.1f} ms   "
          f"target < 100 ms (about 1,000 ms before version 4 of the protocol)   "
          f"{verdict(took[-1] < 100)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--lag-runs", type=int, default=5)
    ap.add_argument("--refill", type=int, default=100000)
    ap.add_argument("--failovers", type=int, default=60)
    ap.add_argument("--restarts", type=int, default=10)
    args = ap.parse_args()
    with RssNode("bench-bank", extra=["--max-memory", "4G"]) as node:
        counter_page(node, args.seconds, args.rounds)
        lag(node, 5, args.lag_runs)
        refill(node, args.refill)
        failover_under_load(node, args.failovers)
        first_change_after_restart(node, args.restarts)


if __name__ == "__main__":
    main()
