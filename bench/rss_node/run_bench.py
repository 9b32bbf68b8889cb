#!/usr/bin/env python3
"""rss_node benchmarks, printed side by side from one run (the machines are shared: only ratios
from one run count).

  ingest    updates applied per second, 1 KiB and 4 KiB, one publisher to one rss_node (new
            sessions, and new versions of 10,000 sessions), beside a bare ZeroMQ PUB->SUB of the
            same sizes (one frame, an update's shape since protocol version 3, and the three
            frames of a version 2 update) and redis-server's SET pipelined 16 (random keys among
            1,000,000; one client, and 50)
  fetch     round trip p50/p99 of 1 KiB sessions, beside a bare DEALER->ROUTER echo and
            redis-server's GET
  curve     the same ingest (1 KiB, new versions) and fetch with the node and its clients under
            CURVE, beside the plain figures
  memory    resident memory of rss_node holding 1,000,000 sessions of 1 KiB, against the payload
  fresh memory  GB/s of writing memory just mapped, and of writing it again: a new session's
            block is fresh memory, and on a VM whose host backs guest memory lazily (and takes
            back what the guest frees) its first write costs far more than the copy

Each ingest and round-trip figure is the median of --repeat runs (default 3), the runs of the
things compared interleaved, so that a burst of load from a neighbour hits both sides.

Usage: bench/rss_node/run_bench.py [--quick] [--repeat N] [--sessions N]
Needs a build (RHYTHM_BUILD_DIR, default _build), redis-server and redis-benchmark, and
python3-zmq. Every server it starts listens on a free 127.0.0.1 port and is stopped by its PID.
"""

import argparse
import csv
import io
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

TOP = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "tests" / "integration"))
from rhythm_httpd import free_port, wait_for  # noqa: E402
from rss_node_fixture import BankKeys, RssNode  # noqa: E402

BUILD = pathlib.Path(os.environ.get("RHYTHM_BUILD_DIR") or TOP / "_build")
HELPER = BUILD / "bench" / "rss_node" / "rss_node_bench"


def helper(*args, curve_node=None):
    """Runs the C++ helper; with `curve_node` (an RssNode under CURVE) as that node's client."""
    env = dict(os.environ)
    if curve_node is not None:
        env["RHYTHM_BENCH_CURVE_SERVER"] = str(curve_node.keys.bank.public_path)
        env["RHYTHM_BENCH_CURVE_SECRET"] = str(curve_node.curve.pair.secret_path)
    out = subprocess.run([str(HELPER), *map(str, args)], check=True, capture_output=True,
                         text=True, timeout=600, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def resident_bytes(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Redis:
    """redis-server on a free loopback port, no persistence, stopped by its PID."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="rhythm-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, 10, "redis-server to answer")

    def _answers(self):
        p = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                           text=True)
        return p.stdout.strip() == "PONG"

    def benchmark(self, test, size, count, pipeline, clients):
        out = subprocess.run(
            ["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.port), "-t", test,
             "-d", str(size), "-n", str(count), "-P", str(pipeline), "-c", str(clients),
             "-r", "1000000", "--csv"],
            check=True, capture_output=True, text=True, timeout=600).stdout
        rows = list(csv.DictReader(io.StringIO(out)))
        row = rows[-1]
        return {"per_second": float(row["rps"]), "p50_us": float(row["p50_latency_ms"]) * 1000,
                "p99_us": float(row["p99_latency_ms"]) * 1000}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)
        shutil.rmtree(self.dir, ignore_errors=True)


def ingest_on_fresh_node(size, count, distinct, keys=None, curve=None):
    """With `keys`, the node is under CURVE and `curve` is the ingest's listed client: made once
    by the caller, as a key pair cannot be written twice to the same path."""
    with RssNode(name="bench", keys=keys, curve=curve) as node:
        return helper("ingest", node.updates, node.queries, size, count, 0, distinct,
                      curve_node=node if keys else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, rougher numbers")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--sessions", type=int, default=1_000_000,
                        help="sessions of 1 KiB for the memory figure (default 1,000,000)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    counts = {1024: 300_000 // scale, 4096: 100_000 // scale}
    fetches = 20_000 // scale

    runs = {}

    def record(key, value):
        runs.setdefault(key, []).append(value)

    keys = BankKeys(tempfile.mkdtemp(prefix="rhythm-bench-keys-"))
    redis = Redis()
    try:
        with RssNode(name="bench") as fetch_node, \
                RssNode(name="bench-curve", keys=keys) as curve_node:
            for node in (fetch_node, curve_node):
                helper("ingest", node.updates, node.queries, 1024, fetches + 1, 0, fetches + 1,
                       curve_node=node if node.keys else None)
            for _ in range(args.repeat):
                record("curve-update", ingest_on_fresh_node(1024, counts[1024], 10_000, keys,
                                                            curve_node.curve))
                record("curve-fetch", helper("fetch", curve_node.queries, fetches, 0,
                                             curve_node=curve_node))
                for size, count in counts.items():
                    record(("bare", size), helper("pubsub-bare", size, count, 1))
                    record(("bare3", size), helper("pubsub-bare", size, count, 3))
                    record(("touch", size), helper("first-touch", size * count >> 20))
                    record(("new", size), ingest_on_fresh_node(size, count, count))
                    record(("update", size), ingest_on_fresh_node(size, count, 10_000))
                    record(("set16", size), redis.benchmark("set", size, count, 16, 1))
                    record(("set16c50", size), redis.benchmark("set", size, count, 16, 50))
                record("echo", helper("echo-bare", 1024, fetches))
                record("fetch", helper("fetch", fetch_node.queries, fetches, 0))
                record("get", redis.benchmark("get", 1024, fetches, 1, 1))
                record("get16", redis.benchmark("get", 1024, counts[1024], 16, 1))
    finally:
        redis.stop()
        shutil.rmtree(keys.dir, ignore_errors=True)
    # The median of each field over the runs.
    results = {key: {field: statistics.median(r[field] for r in values)
                     for field in ("per_second", "p50_us", "p99_us", "first_gb_per_s",
                                   "again_gb_per_s") if field in values[0]}
               for key, values in runs.items()}
    sessions = args.sessions // scale
    with RssNode(name="bench") as node:
        idle = resident_bytes(node.pid)
        helper("ingest", node.updates, node.queries, 1024, sessions, 0, sessions)
        status = node.status()
        results["memory"] = {"rss": resident_bytes(node.pid), "idle": idle,
                             "payload": sessions * 1024, "store": status["bytes"]}

    print(f"rss_node benchmark ({'quick' if args.quick else 'full'} run, "
          f"{os.cpu_count()} cores, every figure from this run, medians of {args.repeat})\n")
    print("ingest: updates applied per second, one publisher, lossless (XPUB_NODROP)")
    for size in counts:
        b = results[("bare", size)]["per_second"]
        b3 = results[("bare3", size)]["per_second"]
        r = results[("set16", size)]["per_second"]
        r50 = results[("set16c50", size)]["per_second"]
        print(f"  {size} bytes: bare PUB->SUB {b:,.0f}/s (3 frames: {b3:,.0f}/s, "
              f"{b3 / b:.2f}x); redis SET -P16 -c1 {r:,.0f}/s, -c50 {r50:,.0f}/s")
        for kind, label in (("new", "new sessions"), ("update", "new versions")):
            n = results[(kind, size)]["per_second"]
            print(f"    rss_node {label:<13} {n:>10,.0f}/s   vs bare {n / b:.2f} (target >= 0.80), "
                  f"vs bare 3-frame {n / b3:.2f}, vs redis -c1 {n / r:.2f} (target >= 1.00), "
                  f"vs redis -c50 {n / r50:.2f}")
        t = results[("touch", size)]
        print(f"    fresh memory: first write {t['first_gb_per_s']:.2f} GB/s, written again "
              f"{t['again_gb_per_s']:.2f} GB/s; new sessions at the bare rate need "
              f"{b * size / 1e9:.2f} GB/s of it")
    f, e, g = results["fetch"], results["echo"], results["get"]
    print("\nfetch round trip, 1 KiB, one request at a time (microseconds)")
    print(f"  rss_node fetch     p50 {f['p50_us']:>7.1f}  p99 {f['p99_us']:>7.1f}")
    print(f"  bare DEALER echo   p50 {e['p50_us']:>7.1f}  p99 {e['p99_us']:>7.1f}")
    print(f"  redis GET -c1      p50 {g['p50_us']:>7.1f}  p99 {g['p99_us']:>7.1f}  "
          f"(redis-benchmark rounds to 8 us steps)")
    print(f"  p99 ratio rss_node / bare echo: {f['p99_us'] / e['p99_us']:.2f} (target <= 1.50); "
          f"p50 ratio {f['p50_us'] / e['p50_us']:.2f}")
    print(f"  redis GET -P16 -c1: {results['get16']['per_second']:,.0f}/s")
    plain_u, curve_u = results[("update", 1024)], results["curve-update"]
    curve_f = results["curve-fetch"]
    print("\nCURVE (node and clients under CURVE) beside plain text, 1 KiB")
    print(f"  ingest, new versions: plain {plain_u['per_second']:>10,.0f}/s   CURVE "
          f"{curve_u['per_second']:>10,.0f}/s   ratio {curve_u['per_second'] / plain_u['per_second']:.2f}")
    print(f"  fetch p50: plain {f['p50_us']:>7.1f} us   CURVE {curve_f['p50_us']:>7.1f} us   "
          f"ratio {curve_f['p50_us'] / f['p50_us']:.2f}")
    print(f"  fetch p99: plain {f['p99_us']:>7.1f} us   CURVE {curve_f['p99_us']:>7.1f} us   "
          f"ratio {curve_f['p99_us'] / f['p99_us']:.2f}")
    m = results["memory"]
    print(f"\nmemory: {sessions:,} sessions of 1 KiB")
    print(f"  payload {m['payload'] / 2**20:,.0f} MiB, store accounting {m['store'] / 2**20:,.0f} "
          f"MiB, resident {m['rss'] / 2**20:,.0f} MiB (idle {m['idle'] / 2**20:,.1f} MiB)")
    print(f"  resident / payload: {m['rss'] / m['payload']:.3f} (target <= 1.30)")


if __name__ == "__main__":
    main()
