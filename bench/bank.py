#!/usr/bin/env python3
"""The rss_node bank's recovery benchmark (issue 5, section 4), every figure from one run.

For each count N of sessions (default 100,000 and 1,000,000):

  1. three rss_nodes with --replicas 2 that know each other; wait until each sees the three up
     and has decided what it owns, and every shard is owned by two of them;
  2. N sessions of 1 KiB published by one agent-like publisher connected to every node (the C++
     helper `rss_node_bench ingest-bank`), until the nodes have applied 2 x N updates;
  3. kill -9 one node (by its PID); the time until every shard is back on two live nodes and every
     session is held twice: both survivors see the dead node down and own all 1024 shards,
     `shards_short` is 0 on both, and the survivors hold 2 x N of the loaded sessions;
  4. right after the kill, an ingest of fresh 1 KiB sessions to the survivors (it starts sending
     when both have subscribed to the shards they took over, that is when the refill starts, and
     is stopped when the restore is complete): the survivors' ingest rate while they refill;
     then the same ingest (as many sessions) to the same survivors, idle: their rate when idle.

The refill here is by snapshot alone: the publisher does not heartbeat, so the nodes know no
agent to ask for re-sends. If the restore does not complete in time, the script prints what the
survivors' status shows and stops with exit code 1.

Usage: bench/bank.py [--sessions N ...] [--quick] [--timeout S]
Needs a build (RHYTHM_BUILD_DIR, default _build) and python3-zmq. Every node listens on free
127.0.0.1 ports and every process started is stopped by its PID.
"""

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import time

TOP = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "integration"))
from rhythm_httpd import wait_for  # noqa: E402
from rss_node_fixture import SHARD_COUNT, RssNode, parse_shard_ranges  # noqa: E402

BUILD = pathlib.Path(os.environ.get("RHYTHM_BUILD_DIR") or TOP / "_build").resolve()
os.environ["RHYTHM_BUILD_DIR"] = str(BUILD)  # the nodes run in their own directories
HELPER = BUILD / "bench" / "rss_node" / "rss_node_bench"
SIZE = 1024
REPLICAS = 2
NAMES = ("bank-a", "bank-b", "bank-c")
POLL_S = 0.05


class RestoreFailed(Exception):
    pass


def copies_per_shard(statuses):
    counts = [0] * SHARD_COUNT
    for status in statuses:
        for s in parse_shard_ranges(status["shards_owned_list"]):
            counts[s] += 1
    return counts


def up_names(status):
    return {m["name"] for m in status["members"] if m["name"] and m["state"] == "up"}


def wait_members(nodes, up, timeout=15):
    for node in nodes:
        wait_for(lambda: (lambda s: s["ownership_decided"] and up_names(s) == up)(node.status()),
                 timeout, f"{node.name} to see {sorted(up)} up")


class Ingest:
    """`rss_node_bench ingest-bank` in the background: COUNT new sessions from FIRST, published to
    every node of `nodes` once they have SUBSCRIPTIONS subscriptions between them."""

    def __init__(self, nodes, count, first, subscriptions):
        self.proc = subprocess.Popen(
            [str(HELPER), "ingest-bank", ",".join(n.updates for n in nodes),
             ",".join(n.queries for n in nodes), str(SIZE), str(count), str(first),
             str(subscriptions)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.start_t = None

    def started(self):
        """Blocks until the helper starts sending; returns its start time (CLOCK_MONOTONIC)."""
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"rss_node_bench ingest-bank exited with {self.proc.wait()}")
        self.start_t = json.loads(line)["t"]
        return self.start_t

    def stop(self):
        """Asks the helper to stop sending (what it sent is still waited for)."""
        try:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it had sent everything and left

    def result(self, timeout=600):
        out, _ = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise RuntimeError(f"rss_node_bench ingest-bank exited with {self.proc.returncode}")
        return json.loads(out.strip().splitlines()[-1])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()  # by its PID
            self.proc.wait(10)


def ingest(nodes, count, first, subscriptions):
    job = Ingest(nodes, count, first, subscriptions)
    try:
        job.started()
        return job.result()
    finally:
        job.kill()


def describe(name, status):
    return (f"{name}: shards_owned {status['shards_owned']}, shards_short {status['shards_short']} "
            f"({status['shards_short_list'] or '-'}), sessions {status['sessions']:,}, "
            f"updates_applied {status['updates_applied']:,}, "
            f"snapshots_requested {status['snapshots_requested']}, "
            f"snapshot_records_applied {status['snapshot_records_applied']:,}, "
            f"members up {sorted(up_names(status))}, ownership_changes "
            f"{status['ownership_changes']}")


def run(n, timeout, with_ingest=True):
    """One bank, N sessions, one node killed: the figures as a dict. Without `with_ingest`, the
    restore alone (no ingest while the survivors refill, nor after)."""
    out = {"sessions": n}
    nodes = [RssNode(name=name, extra=["--replicas", str(REPLICAS)]) for name in NAMES]
    refill = None
    try:
        for node in nodes:
            node.peers = [o.queries for o in nodes if o is not node]
        for node in nodes:
            node.start()
        wait_members(nodes, set(NAMES))
        statuses = [node.status() for node in nodes]
        if copies_per_shard(statuses) != [REPLICAS] * SHARD_COUNT:
            raise RuntimeError("before the load, not every shard is owned by two nodes")
        subscriptions = sum(s["shards_subscribed"] for s in statuses)

        load = ingest(nodes, n, 0, subscriptions)
        out["load_per_second"] = load["per_second"]
        statuses = [node.status() for node in nodes]
        held = sum(s["sessions"] for s in statuses)
        if held != REPLICAS * n or copies_per_shard(statuses) != [REPLICAS] * SHARD_COUNT:
            raise RuntimeError(f"after the load: {held:,} sessions held, not {REPLICAS * n:,}")
        print(f"  {n:,} sessions loaded ({load['per_second']:,.0f}/s, each to two nodes); "
              f"per node: " + ", ".join(f"{s['name']} {s['sessions']:,}" for s in statuses),
              flush=True)

        *survivors, victim = nodes
        at_kill = {node.name: node.status() for node in survivors}
        # Fresh sessions numbered after the loaded ones; at most as many again.
        if with_ingest:
            refill = Ingest(survivors, n, n, REPLICAS * SHARD_COUNT)
        t_kill = time.monotonic()
        victim.kill()  # SIGKILL by its PID

        noticed_t = None
        restored_t = None
        last = {}
        deadline = t_kill + timeout
        # The ingest starts sending once the survivors have subscribed to the shards they take
        # over; until then, and meanwhile, watch the survivors.
        while restored_t is None:
            now = time.monotonic()
            last = {node.name: node.status() for node in survivors}
            taken_over = all(
                victim.name not in up_names(s) and s["shards_owned"] == SHARD_COUNT
                for s in last.values())
            if taken_over and noticed_t is None:
                noticed_t = now
            # Sessions held of the loaded ones: each fresh one is an applied update, or a
            # duplicate when a peer's snapshot brought it first (until its update arrives, it
            # counts here as a loaded one: a few at most once the fills are over).
            loaded = sum(s["sessions"] - sum(s[f] - at_kill[name][f]
                                             for f in ("updates_applied", "updates_duplicate"))
                         for name, s in last.items())
            if (taken_over and all(s["shards_short"] == 0 for s in last.values())
                    and loaded >= REPLICAS * n):
                restored_t = time.monotonic()
                break
            if now > deadline:
                print(f"\nRESTORE DID NOT COMPLETE within {timeout:.0f} s of the kill "
                      f"({n:,} sessions; loaded sessions held by the survivors {loaded:,}, "
                      f"expected {REPLICAS * n:,}):")
                for name, s in last.items():
                    print("  " + describe(name, s))
                for node in survivors:
                    print(f"  --- {node.name} log (last 15 lines) ---")
                    for line in node.log_text().splitlines()[-15:]:
                        print("  " + line)
                raise RestoreFailed(n)
            time.sleep(POLL_S)
        statuses = [node.status() for node in survivors]
        if copies_per_shard(statuses) != [REPLICAS] * SHARD_COUNT:
            raise RuntimeError("after the restore, not every shard is on both survivors")
        out.update(
            restore_s=restored_t - t_kill, notice_s=noticed_t - t_kill,
            refill_s=restored_t - noticed_t,
            snapshot_records=sum(s["snapshot_records_applied"] for s in statuses),
            snapshots_requested=sum(s["snapshots_requested"] for s in statuses))
        print(f"  kill -9 {victim.name}: noticed after {out['notice_s']:.2f} s, every session "
              f"twice after {out['restore_s']:.2f} s (refill {out['refill_s']:.2f} s, "
              f"{out['snapshot_records']:,} snapshot records)", flush=True)
        if not with_ingest:
            return out
        refill.stop()
        during = refill.result()
        refill = None
        out.update(during=during,
                   during_in_refill=(restored_t - during["start_t"]) / during["seconds"])
        print(f"  ingest while refilling: {during['sent']:,} sessions at "
              f"{during['per_second']:,.0f}/s", flush=True)

        # The same ingest to the same survivors, now idle.
        idle = ingest(survivors, during["sent"], n + during["sent"], REPLICAS * SHARD_COUNT)
        out["idle"] = idle
        held = sum(node.status()["sessions"] for node in survivors)
        expected = REPLICAS * (n + during["sent"] + idle["sent"])
        if held != expected:
            raise RuntimeError(f"at the end the survivors hold {held:,} sessions, not "
                               f"{expected:,}")
        print(f"  idle ingest: {idle['sent']:,} sessions at {idle['per_second']:,.0f}/s",
              flush=True)
        return out
    finally:
        if refill is not None:
            refill.kill()
        for node in nodes:
            node.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+",
                        help="session counts (default 100,000 and 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 sessions")
    parser.add_argument("--no-ingest", action="store_true",
                        help="the restore alone, without the ingest while refilling and idle")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds after the kill to give up on the restore "
                             "(default 60 + 60 per 1,000,000 sessions)")
    args = parser.parse_args()
    counts = args.sessions or ([10_000, 100_000] if args.quick else [100_000, 1_000_000])
    if not HELPER.exists():
        sys.exit(f"{HELPER} not found: build first or set RHYTHM_BUILD_DIR")

    print(f"rss_node bank recovery: three nodes, --replicas 2, 1 KiB sessions, kill -9 one "
          f"({os.cpu_count()} cores, {datetime.date.today()})", flush=True)
    results = []
    for n in counts:
        print(f"\n{n:,} sessions", flush=True)
        timeout = args.timeout or 60 + 60 * n / 1_000_000
        try:
            results.append(run(n, timeout, not args.no_ingest))
        except RestoreFailed:
            print(f"\nreproduce: RHYTHM_BUILD_DIR={BUILD} /usr/bin/python3 bench/bank.py "
                  f"--sessions {n}" + (" --no-ingest" if args.no_ingest else ""))
            sys.exit(1)

    print("\nrestore: from the kill until every shard is on two live nodes and every session is "
          "held twice\n(noticed: both survivors see the node down, after 3 s of silence; "
          "refill: from then on).\ningest: fresh 1 KiB sessions to both survivors, updates "
          "applied per second by each survivor,\nwhile they refill (from the start of the refill "
          "to the end of the restore) and idle (the same\nnumber of sessions afterwards).\n")
    header = (f"{'sessions':>10} | {'restore':>8} | {'noticed':>8} | {'refill':>7} | "
              f"{'snapshot recs':>13} | {'ingest refilling':>16} | {'ingest idle':>11} | "
              f"{'ratio':>5}")
    print(header)
    print("-" * len(header))
    for r in results:
        row = (f"{r['sessions']:>10,} | {r['restore_s']:>7.2f}s | {r['notice_s']:>7.2f}s | "
               f"{r['refill_s']:>6.2f}s | {r['snapshot_records']:>13,} | ")
        if "during" in r:
            d, i = r["during"], r["idle"]
            row += (f"{d['per_second']:>14,.0f}/s | {i['per_second']:>9,.0f}/s | "
                    f"{d['per_second'] / i['per_second']:>5.2f}")
        else:
            row += f"{'(--no-ingest)':>16} | {'':>11} |"
        print(row)
    with_ingest = [r for r in results if "during" in r]
    if with_ingest:
        print("\n(ingest while refilling: sessions sent, and the share of its window inside the "
              "refill: " + "; ".join(f"{r['sessions']:,}: {r['during']['sent']:,}, "
                                     f"{min(1.0, r['during_in_refill']):.0%}"
                                     for r in with_ingest) + ")")
    print("target (issue 5): every session back to two copies within 30 s for 100,000 sessions")


if __name__ == "__main__":
    main()
