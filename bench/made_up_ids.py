"""What a flood of made-up session IDs costs the bank and the legitimate users of the server it
hits (issue 16), with session IDs unsigned and signed (RhythmSessionKeyFile), in one run.

One rss_node and one web server (the real apache2, event MPM). The users: wrk with --users
connections, each counting in a session of its own (bench/wrk_session.lua). The attacker: a
second wrk with --flooders connections, sending either no cookie at all (a new session each:
what a refused ID comes to when IDs are signed) or a new made-up, well-formed ID on every request
(bench/wrk_made_up_ids.lua). Each variant runs the users alone, then beside each attacker,
--seconds each. Printed: the users' requests/s, p50 and p99 (ms), the attacker's requests/s, the
fetches the node answered per second, and the RS0202/RS0111 lines written.

Targets, signed: made-up IDs cost the bank no fetch, and the users a p99 within 1.2x of theirs
beside as many clients sending no cookie. (Both attackers are closed loops on a 2-core machine:
the users' p99 beside them is the CPU the attacker takes, not a cost of the IDs.)

    bench/made-up-ids [--seconds 5] [--users 4] [--flooders 8]
"""

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import threading

TOP = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("RHYTHM_BUILD_DIR", TOP / "_build"))
sys.path.insert(0, str(TOP / "tests" / "integration"))
os.environ.setdefault("RHYTHM_MODULE", str(BUILD / "mod_rhythm_session" / "mod_rhythm_session.so"))
os.environ.setdefault("RHYTHM_BUILD_DIR", str(BUILD))

from rhythm_httpd import app_location, backed_server, wait_for  # noqa: E402
from rss_node_fixture import RssNode  # noqa: E402

# The attacker of each phase (a wrk script; "" for none: no cookie), or None for no attacker.
PHASES = (("quiet", None), ("no-cookie", ""), ("made-up", "wrk_made_up_ids.lua"))


def wrk(url, script, seconds, connections):
    """wrk against `url`, with `script` (its RESULT line as a dict) or without ({"rps": ...})."""
    command = ["wrk", "-t", str(connections), "-c", str(connections), "-d", f"{seconds}s"]
    if script:
        command += ["--latency", "-s", str(TOP / "bench" / script)]
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    if not script:
        return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    m = re.search(r"RESULT (.*)", out)
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def run_phase(server, users, attack_script, flooders, seconds):
    """The users and, unless `attack_script` is None, the attacker beside them, for `seconds`:
    the users' RESULT and the attacker's requests/s."""
    url = server.url + "/app/counter"
    attack = {}
    attacker = None
    if attack_script is not None:
        attacker = threading.Thread(
            target=lambda: attack.update(wrk(url, attack_script, seconds, flooders)))
        attacker.start()
    result = wrk(url, "wrk_session.lua", seconds, users)
    if attacker:
        attacker.join()
    return result, attack.get("rps", 0.0)


def log_lines(web):
    return sum(1 for line in web.log_text().splitlines() if "RS0202" in line or "RS0111" in line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--flooders", type=int, default=8)
    args = parser.parse_args()
    keys = pathlib.Path(tempfile.mkdtemp(prefix="rhythm-made-up-ids-")) / "ids.keys"
    keys.write_text(os.urandom(32).hex() + "\n")
    keys.chmod(0o600)
    print(f"{'variant':<9} {'attacker':<9} {'users/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'attack/s':>8} {'fetches/s':>9} {'log lines':>9}")
    results = {}
    for variant, extra in (("unsigned", ""), ("signed", f"RhythmSessionKeyFile {keys}")):
        with RssNode("bank-1") as node, \
                backed_server("web-a", [node], extra, site=app_location()) as web:
            wait_for(lambda: web.status().get("RhythmBackupNodesUp") == 1, 10, "the agent")
            for phase, attack_script in PHASES:
                fetches, lines = node.status()["fetches"], log_lines(web)
                users, attack = run_phase(web, args.users, attack_script, args.flooders,
                                          args.seconds)
                fetched = (node.status()["fetches"] - fetches) / args.seconds
                assert users["non200"] == 0 and users["errors"] == 0, users
                p99 = users["p99_us"] / 1000
                results[variant, phase] = (p99, fetched)
                print(f"{variant:<9} {phase:<9} {users['rps']:>8.0f} "
                      f"{users['p50_us'] / 1000:>7.2f} {p99:>7.2f} {attack:>8.0f} "
                      f"{fetched:>9.0f} {log_lines(web) - lines:>9}")
    baseline, _ = results["signed", "no-cookie"]
    during, fetched = results["signed", "made-up"]
    print(f"signed: made-up IDs cost the bank {fetched:.0f} fetches/s (target 0), and the users "
          f"a p99 of {during:.2f} ms against {baseline:.2f} ms beside clients sending no cookie: "
          f"{during / baseline:.2f}x (target <= 1.2x)")
    print(f"unsigned: made-up IDs cost the bank {results['unsigned', 'made-up'][1]:.0f} "
          f"fetches/s, and the users a p99 of {results['unsigned', 'made-up'][0]:.2f} ms")


if __name__ == "__main__":
    main()
