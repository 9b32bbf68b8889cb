"""The counter-page benchmark: one private httpd, a mod_lua page that reads and writes its
session on every request, and wrk with one session per connection, against four variants in
one run: no session, mod_session_cookie, mod_session_dbd with SQLite, and mod_rhythm_session.
Prints requests/s and p99 latency for each and the ratios the targets are about.

    bench/counter-page [--seconds N] [--connections N] [--mpm event|worker|prefork]
"""

import argparse
import os
import pathlib
import re
import sqlite3
import statistics
import subprocess
import sys

TOP = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "integration"))
os.environ.setdefault("RHYTHM_MODULE", str(TOP / "_build" / "mod_rhythm_session" /
                                          "mod_rhythm_session.so"))

from rhythm_httpd import Httpd  # noqa: E402

SESSION_APP = """
    Session On
    SessionEnv On
    SessionHeader X-Replace-Session
"""

SITE = """
# One Lua state per thread, compiled once: the page should cost what a real application's does.
LuaScope thread
LuaCodeCache forever
LuaMapHandler ^/(none|cookie|dbd|rhythm)/counter$ "{pages}/app.lua" counter

DBDriver sqlite3
DBDParams "{dir}/sessions.db"
DBDPersist On
DBDMin 1
DBDKeep 4
DBDMax 16
DBDPrepareSQL "select value from session where key = %s and (expiry = 0 or expiry > %lld)" selectsession
DBDPrepareSQL "delete from session where key = %s" deletesession
DBDPrepareSQL "insert into session (value, expiry, key) values (%s, %lld, %s)" insertsession
DBDPrepareSQL "update session set value = %s, expiry = %lld, key = %s where key = %s" updatesession
DBDPrepareSQL "delete from session where expiry != 0 and expiry < %lld" cleansession

<Location /cookie>
""" + SESSION_APP + """
    SessionCookieName bench_cookie path=/cookie;HttpOnly
</Location>
<Location /dbd>
""" + SESSION_APP + """
    SessionDBDCookieName bench_dbd path=/dbd;HttpOnly
</Location>
<Location /rhythm>
""" + SESSION_APP + """
    RhythmSession On
</Location>
"""

VARIANTS = [
    ("no session", "/none/counter"),
    ("mod_session_cookie", "/cookie/counter"),
    ("mod_session_dbd (SQLite)", "/dbd/counter"),
    ("mod_rhythm_session", "/rhythm/counter"),
]


def httpd_cpu_ticks(server):
    """User + system CPU ticks of the server's processes (parent and children)."""
    ticks = 0
    pids = subprocess.run(["pgrep", "-f", str(server.conf)], capture_output=True,
                          text=True).stdout.split()
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass  # a child that exited meanwhile
    return ticks


def run_wrk(server, path, seconds, connections):
    before = httpd_cpu_ticks(server)
    result = wrk(server.url + path, seconds, connections)
    used = httpd_cpu_ticks(server) - before
    result["cpu_us"] = used * 1e6 / os.sysconf("SC_CLK_TCK") / max(result["requests"], 1)
    return result


def wrk(url, seconds, connections):
    out = subprocess.run(
        ["wrk", "-t", str(connections), "-c", str(connections), "-d", f"{seconds}s",
         "--latency", "-s", str(TOP / "bench" / "wrk_session.lua"), url],
        capture_output=True, text=True, check=True).stdout
    m = re.search(r"RESULT (.*)", out)
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--mpm", default="event")
    args = ap.parse_args()

    server = Httpd(SITE, mpm=args.mpm, modules=["session_cookie", "session_dbd", "dbd"],
                   name="bench")
    db = sqlite3.connect(server.dir / "sessions.db")
    db.execute("create table session (key text primary key, value text, expiry integer)")
    db.commit()
    db.close()
    os.chmod(server.dir / "sessions.db", 0o666)
    # SQLite writes its journal beside the database: the children need the folder writable.
    os.chmod(server.dir, 0o777)
    # The variants take turns, round after round, so that a noisy moment on this shared machine
    # hits them all alike; each figure is the median over the rounds.
    runs = {name: [] for name, _ in VARIANTS}
    with server:
        for name, path in VARIANTS:
            wrk(server.url + path, 1, args.connections)  # warm-up
        for _ in range(args.rounds):
            for name, path in VARIANTS:
                runs[name].append(run_wrk(server, path, args.seconds, args.connections))
        failed_dbd_saves = server.log_text().count("AH01822")
    results = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
               for name, rs in runs.items()}
    results["mod_session_dbd (SQLite)"]["errors"] += failed_dbd_saves

    print(f"counter page, {args.connections} connections (one session each), mpm_{args.mpm}, "
          f"median of {args.rounds} rounds of {args.seconds}s per variant, one run:")
    print(f"  {'variant':<26} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'httpd CPU us/req':>17} {'failures':>9}")
    for name, _ in VARIANTS:
        r = results[name]
        print(f"  {name:<26} {r['rps']:>11.0f} {r['p50_us'] / 1000:>8.2f} "
              f"{r['p99_us'] / 1000:>8.2f} {r['cpu_us']:>17.1f} {int(r['errors'] + r['non200']):>9}")
    rhythm = results["mod_rhythm_session"]["rps"]
    none = results["no session"]["rps"]
    cookie = results["mod_session_cookie"]["rps"]
    dbd = results["mod_session_dbd (SQLite)"]["rps"]

    def verdict(ok):
        return "met" if ok else "NOT met"

    print(f"  rhythm / no session       = {rhythm / none:.2f}   target >= 0.90   "
          f"{verdict(rhythm >= 0.9 * none)}")
    print(f"  rhythm / session_cookie   = {rhythm / cookie:.2f}   target >  1.00   "
          f"{verdict(rhythm > cookie)}")
    print(f"  rhythm / session_dbd      = {rhythm / dbd:.2f}   target >= 5.00   "
          f"{verdict(rhythm >= 5 * dbd)}")
    print("  (failures: connection errors and non-200 answers; for mod_session_dbd also the saves "
          "SQLite refused with 'database is locked', from the error log)")


if __name__ == "__main__":
    main()
