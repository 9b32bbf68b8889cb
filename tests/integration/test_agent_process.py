"""The backup agent's life as an httpd child: forked after the configuration is read, stopped
and reaped by the parent at every restart and at the stop, so that httpd itself never meets it
(a child it does not know is logged as "long lost child came home!", AH00488/AH00167)."""

import concurrent.futures
import os
import re
import signal
import time

import pytest

from rhythm_httpd import COOKIE, Browser, backed_server, count_of, wait_for
from rss_node_fixture import RssNode
from test_backup import backup_status, count_in_bank

# httpd writes each line's level as [module:level]; the test servers log at warn (and the
# module at debug), so any of these is a line a clean restart must not write.
ALARMING = (":warn]", ":error]", ":crit]", ":alert]", ":emerg]")

# APR's bound on the wait for a subprocess of a pool being cleared (apr_pools.c, TIMEOUT_USECS)
# before it is killed: a restart that takes this long waited for an agent that did not stop.
APR_KILL_AFTER_S = 3.0


def alarming_lines(server, agents=()):
    """The warnings and worse, but for httpd's AH00045 about a worker child (not an agent of
    `agents`) slow to exit after its SIGTERM: under ASan a child's exit can take over a second,
    which says nothing of the agent (seen in 2 of 8 runs)."""
    def about_a_worker(line):
        m = re.search(r"AH00045: child process (\d+) still did not exit", line)
        return m is not None and int(m.group(1)) not in agents
    return [line for line in server.log_text().splitlines()
            if any(level in line for level in ALARMING) and not about_a_worker(line)]


def process_start(pid):
    """The process's start time (clock ticks since boot) and state, or None when it is gone."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[19]), fields[0]


def is_gone(pid, started):
    """True when the process (pid, start time) no longer exists, not even as a zombie: a process
    there now with another start time is another process."""
    now = process_start(pid)
    return now is None or now[0] != started


def acknowledged_count(server, node, browser, expected):
    sid = browser.cookies[COOKIE]
    wait_for(lambda: count_in_bank(node, sid) == expected, 10, f"count={expected} in the bank")
    wait_for(lambda: (lambda s: s["RhythmBackupPending"] == 0 and
                      s["RhythmBackupOldestUnacknowledgedMs"] == 0)(backup_status(server)),
             10, "every change acknowledged")


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_restarts_and_stop_reap_the_agent_and_log_no_warning(mpm):
    with RssNode("bank-1") as node, backed_server("web-a", [node], mpm=mpm) as a:
        browsers = [Browser(a) for _ in range(4)]
        for br in browsers:
            for _ in range(2):
                assert br.get("/app/counter")[0] == 200
        for br in browsers:
            acknowledged_count(a, node, br, 2)
        expected = 2
        lingering = []  # old agents still there once their restart was done
        agents = set()  # every agent's PID
        slow = []
        for restart in (a.graceful, a.graceful, a.restart):
            old = wait_for(lambda: backup_status(a)["RhythmBackupAgentPid"], 10, "the agent")
            agents.add(old)
            old_start = process_start(old)[0]
            started = time.monotonic()
            restart()
            took = time.monotonic() - started
            new = wait_for(lambda: (lambda p: p if p not in (0, old) else None)(
                backup_status(a)["RhythmBackupAgentPid"]), 10, "the new generation's agent")
            # The new generation runs: the parent reaped the old agent before it read its
            # configuration again, and without waiting for APR's kill.
            if not is_gone(old, old_start):
                lingering.append((restart.__name__, old, process_start(old)))
            if took >= APR_KILL_AFTER_S:
                slow.append((restart.__name__, took))
            print(f"{mpm} {restart.__name__}: agent {old} -> {new}, {took:.2f} s")
            expected += 1
            for br in browsers:
                status, _, text = br.get("/app/counter")
                assert (status, count_of(text)) == (200, expected)
            for br in browsers:
                acknowledged_count(a, node, br, expected)
        last = backup_status(a)["RhythmBackupAgentPid"]
        last_start = process_start(last)[0]
        a.stop()
        if not is_gone(last, last_start):
            lingering.append(("stop", last, process_start(last)))
        agents.add(last)
        assert alarming_lines(a, agents) == [], "\n".join(alarming_lines(a, agents))
        assert lingering == [] and slow == []
        # Each of the four agents said it stopped (three restarts and the stop).
        assert a.log_text().count("RS0303") == 4


# ---- the changes the bank lacks when the server stops or restarts ---------------------------

def unacknowledged_changes(server, node, count):
    """A browser that counted to 2 (acknowledged), then to `count` once the agent counted `node`
    silent (stopped with SIGSTOP, and left so): the bank lacks the last changes, and the agent
    has not sent them (it sends nothing to a node that is down). Returns its session ID."""
    browser = Browser(server)
    for _ in range(2):
        browser.get("/app/counter")
    sid = browser.cookies[COOKIE]
    wait_for(lambda: count_in_bank(node, sid) == 2, 10, "count=2 in the bank")
    os.kill(node.pid, signal.SIGSTOP)
    wait_for(lambda: backup_status(server)["RhythmBackupNodesUp"] == 0, 10,
             "the agent to count the node silent")
    for n in range(3, count + 1):
        assert count_of(browser.get("/app/counter")[2]) == n
    return sid


def log_lines(server, code):
    return [line for line in server.log_text().splitlines() if code in line]


def test_a_server_stopped_gives_the_bank_its_last_changes_first():
    """The server stops with 3 changes the bank lacks, its node silent; the node answers again
    0.3 s into the stop. The agent waits for it (up to 2 s), sends them, and they are not lost
    (before: the agent stopped at once and the bank kept count=2, 2 runs of 2)."""
    with RssNode("bank-1") as node, backed_server("web-a", [node]) as a:
        try:
            sid = unacknowledged_changes(a, node, 5)
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                stopping = pool.submit(a.stop)
                wait_for(lambda: log_lines(a, "RS0333"), 5, "the agent waiting for the bank")
                time.sleep(0.3)  # the scenario: the bank answers again 0.3 s into the stop
                os.kill(node.pid, signal.SIGCONT)
                stopping.result()
            took = time.monotonic() - started
        finally:
            os.kill(node.pid, signal.SIGCONT)
        assert "at the server's end with 1 session(s)" in log_lines(a, "RS0333")[0]
        assert count_in_bank(node, sid) == 5
        assert not log_lines(a, "RS0334")
        assert took < APR_KILL_AFTER_S, took
        print(f"stop with the bank back 0.3 s in: {took:.2f} s")


def test_a_server_stopped_while_the_bank_is_silent_says_what_it_loses():
    """The bank stays stopped: the stop waits 2 s for it, then names what is lost (a warning),
    and ends before APR would kill the agent."""
    with RssNode("bank-1") as node, backed_server("web-a", [node]) as a:
        try:
            unacknowledged_changes(a, node, 4)
            started = time.monotonic()
            a.stop()
            took = time.monotonic() - started
        finally:
            os.kill(node.pid, signal.SIGCONT)
        lost = log_lines(a, "RS0334")
        assert len(lost) == 1 and ":warn]" in lost[0], lost
        assert "stops with 1 session(s) whose last change the bank has not acknowledged" in lost[0]
        # APR looks for the agent 1.5 s and 3 s into its wait, and kills it only if it is still
        # there at 3 s: it was not (it said it stopped, after its 2 s).
        assert log_lines(a, "RS0303")
        assert 2.0 <= took < APR_KILL_AFTER_S + 0.5, took
        print(f"stop with the bank silent: {took:.2f} s")


def test_a_graceful_restart_while_the_bank_is_down_does_not_wait_for_it():
    """Every node silent: a restart does not wait for the bank (its next agent sends what the
    bank lacks, from the segment, once a node answers)."""
    with RssNode("bank-1") as node, backed_server("web-a", [node]) as a:
        try:
            sid = unacknowledged_changes(a, node, 4)
            started = time.monotonic()
            a.graceful()
            took = time.monotonic() - started
        finally:
            os.kill(node.pid, signal.SIGCONT)
        assert not log_lines(a, "RS0333")
        assert "left to the next agent" in log_lines(a, "RS0334")[0]
        wait_for(lambda: count_in_bank(node, sid) == 4, 10, "count=4 from the next agent")
        assert took < 1.0, took
        print(f"graceful restart with the bank down: {took:.2f} s")
