"""Replication lag and failover time with added network latency between the web servers and the
nodes (issue 15): two web servers, two rss_nodes with --replicas 2 and a client, each on a host
of its own (network namespaces, tests/cluster), measured in one run:

- direct: the hosts joined by the bridge alone;
- through the delaying relay (tests/cluster/lag.py) on each web server's host, with 0, 1 and
  20 ms added to each way of every connection the web server makes to the nodes (the relay's
  own cost is the 0 ms row against the direct one).

For each: the replication lag, save to acknowledgement by both owners, at RATE updates/s of
1 KiB sessions from the module's segment and its real backup agent (bench/backup_bench, on a web
server's host), its p50 and p99; and the failover request time: sessions counted once on web-1,
acknowledged, then each requested on web-2, which fetches it from the bank (the owners asked,
and web-1's agent asked for a newer copy first, as a misrouted request is: two round trips),
its p50, p99 and max. Needs root (network namespaces).

    bench/lag [--rate 2000] [--seconds 5] [--failovers 100]
"""

import argparse
import os
import pathlib
import re
import statistics
import sys
import time

TOP = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("RHYTHM_BUILD_DIR", TOP / "_build"))
sys.path.insert(0, str(TOP / "tests"))
sys.path.insert(0, str(TOP / "tests" / "integration"))
os.environ.setdefault("RHYTHM_MODULE", str(BUILD / "mod_rhythm_session" / "mod_rhythm_session.so"))
os.environ.setdefault("RHYTHM_BUILD_DIR", str(BUILD))

from cluster import Cluster, ClusterUnavailable  # noqa: E402
from rhythm_httpd import Browser, SeenFrom, backed_server, count_of, wait_for  # noqa: E402
from rss_node_fixture import RssNode  # noqa: E402

BENCH = BUILD / "bench" / "backup_bench"
WARMUP_S = 1
WEB = ("web-1", "web-2")
NODES = ("node-1", "node-2")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def replication_lag(host, nodes, rate, seconds):
    out = host.run([str(BENCH), "lag", str(rate), str(WARMUP_S), str(seconds),
                    *(n.queries for n in nodes)],
                   capture_output=True, text=True, timeout=seconds + 120).stdout
    m = re.search(r"RESULT (.*)", out)
    if m is None:
        raise RuntimeError(f"backup_bench gave no result: {out[-500:]}")
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def acknowledged(server):
    s = server.status()
    return s["RhythmBackupPending"] == 0 and s["RhythmBackupOldestUnacknowledgedMs"] == 0


def failover_times(client, web1, web2, count):
    """ms of each take-over on web2 of a session counted once on web1 and acknowledged."""
    browsers = [Browser(SeenFrom(client, web1)) for _ in range(count)]
    for b in browsers:
        assert count_of(b.get("/app/counter")[2]) == 1
    wait_for(lambda: acknowledged(web1), 30, "web-1's sessions acknowledged")
    took = []
    for b in browsers:
        b.server = SeenFrom(client, web2)
        started = time.monotonic()
        status, _, text = b.get("/app/counter")
        took.append((time.monotonic() - started) * 1000)
        assert status == 200 and count_of(text) == 2, text
    return took


def measure(added, rate, seconds, failovers):
    """{row label: figures} for one cluster: direct (added None) or through the relays with
    each delay of `added`."""
    rows = {}
    with Cluster(list(WEB) + list(NODES) + ["client"]) as c:
        if added is not None:
            c.enable_lag(list(WEB))  # before any connection is made
        nodes = [RssNode(n, extra=["--replicas", "2"], host=c[n]) for n in NODES]
        nodes[0].peers, nodes[1].peers = [nodes[1].queries], [nodes[0].queries]
        with nodes[0], nodes[1], \
                backed_server("web-1", nodes, host=c["web-1"]) as web1, \
                backed_server("web-2", nodes, host=c["web-2"]) as web2:
            for w in (web1, web2):
                wait_for(lambda: w.status()["RhythmBackupNodesUp"] == 2, 15, "both nodes up")
            for delay in ([None] if added is None else added):
                lag = None if delay is None else c.lag(list(WEB), list(NODES), delay)
                label = "direct" if delay is None else f"relay +{delay} ms"
                r = replication_lag(c["web-1"], nodes, rate, seconds)
                took = failover_times(c["client"], web1, web2, failovers)
                rows[label] = (r, took)
                print(f"  {label:<14} lag p50 {r['p50_us'] / 1000:7.2f} ms  p99 "
                      f"{r['p99_us'] / 1000:7.2f} ms ({r['rate']:.0f}/s)   failover p50 "
                      f"{statistics.median(took):6.1f} ms  p99 {percentile(took, 0.99):6.1f} ms  "
                      f"max {max(took):6.1f} ms", flush=True)
                if lag is not None:
                    lag.heal()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--failovers", type=int, default=100)
    args = ap.parse_args()
    print(f"replication lag at {args.rate} updates/s of 1 KiB (both owners acknowledge), "
          f"{args.seconds:g} s after {WARMUP_S} s of warm-up; failover: {args.failovers} "
          f"take-overs on web-2 of sessions made on web-1. Added latency: each way.")
    try:
        rows = measure(None, args.rate, args.seconds, args.failovers)
        rows.update(measure([0, 1, 20], args.rate, args.seconds, args.failovers))
    except ClusterUnavailable as e:
        print(f"lag: cannot make a cluster here: {e}", file=sys.stderr)
        return 2
    base_lag = rows["relay +0 ms"][0]["p99_us"]
    base_failover = statistics.median(rows["relay +0 ms"][1])
    print(f"\n{'':16}{'lag p99':>10}{'vs +0 ms':>10}{'failover p50':>14}{'vs +0 ms':>10}")
    for label, (r, took) in rows.items():
        print(f"  {label:<14}{r['p99_us'] / 1000:8.2f} ms{r['p99_us'] / base_lag:9.1f}x"
              f"{statistics.median(took):11.1f} ms{statistics.median(took) / base_failover:9.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
