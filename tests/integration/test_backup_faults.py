"""Faults the backup must survive without losing an acknowledged change or serving a stale copy,
each a defect found by fault testing (issue 13): a node that fills up, a web server stopped as a
whole while its users move on, two servers continuing one session, the first changes on a new
connection, and a backup agent that hangs. Real apache2, real rss_node processes, real ZeroMQ;
every figure that claims data is safe is checked against the bank's real content.
"""

import concurrent.futures
import contextlib
import os
import pathlib
import re
import signal
import socket
import threading
import time

from rhythm_httpd import COOKIE, Browser, backed_server, wait_for
from rss_node_fixture import DELETED, FOUND, RssNode, shard_of
from test_backup import (backup_status, count_in_bank, count_of, counted_session, in_bank,
                         stop_agent_outside_the_segment_mutex)
from test_bank import NOTICE_MARGIN_S, NOTICE_S, bank, owned, wait_members


def stopped(pid=None, pgid=None):
    """Whether the process `pid`, or every process of the group `pgid`, is stopped (state T):
    SIGSTOP takes effect when each is next scheduled, after kill has returned."""
    states = []
    for entry in pathlib.Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            continue
        if entry.name == str(pid) or fields[2] == str(pgid):
            states.append(fields[0])
    return states and all(state == "T" for state in states)


def stop_server(server):
    """A hung host: SIGSTOP to the server's whole process group, until every process is stopped."""
    os.killpg(server.pid, signal.SIGSTOP)
    wait_for(lambda: stopped(pgid=server.pid), 5, f"{server.name} stopped")


def stop_node(node):
    os.kill(node.pid, signal.SIGSTOP)
    wait_for(lambda: stopped(pid=node.pid), 5, f"{node.name} stopped")


@contextlib.contextmanager
def hung_while_the_user_goes_on(a, b, user, node, sid, count):
    """A hung host: A's process group stopped while `user` counts on B up to `count` and the
    bank holds it, for 2 s at least. The block runs while A is stopped; A resumes after it."""
    counted = count_in_bank(node, sid)
    stop_server(a)
    try:
        stopped_at = time.monotonic()
        user.server = b
        for _ in range(count - counted):
            assert counted_on(user)[0] == 200
        wait_for(lambda: count_in_bank(node, sid) == count, 10, f"count={count} in the bank")
        yield
        wait_for(lambda: time.monotonic() - stopped_at >= 2, 5, "2 s of stop")
    finally:
        os.killpg(a.pid, signal.SIGCONT)


def all_acknowledged(server):
    st = backup_status(server)
    return st["RhythmBackupPending"] == 0 and st["RhythmBackupOldestUnacknowledgedMs"] == 0


def counted_on(browser, path="/app/counter", timeout=5):
    """The first answer other than 503 to `path`, asked again on each 503: a take-over from a
    server that hung a moment ago is a 503 until that server counts as hung (1.5 s without a
    word), or answers the node's handover."""
    answer = {}

    def served():
        answer["got"] = browser.get(path)
        return answer["got"][0] != 503

    wait_for(served, timeout, f"{path} served", interval=0.05)
    return answer["got"]


def log_lines(server, code):
    return [line for line in server.log_text().splitlines() if code in line]


# ---- a node that fills up --------------------------------------------------------------------

def test_a_full_node_acknowledges_nothing_it_refused_and_stores_it_once_it_has_room():
    """150 sessions of 30 KB into a node limited to 4 MiB (it holds about 130): the server must
    not count one it refused as acknowledged, must show the node as full, and once sessions are
    deleted and the node has room, every session is stored and only then all acknowledged."""
    with RssNode("bank-1", extra=["--max-memory", "4M"]) as node, \
            backed_server("web-a", [node]) as a:
        browsers = []
        for i in range(150):
            b = Browser(a)
            assert b.get(f"/app/set?fill=30000&n={i}")[0] == 200
            browsers.append(b)
        sids = [b.cookies[COOKIE] for b in browsers]
        # Everything published, and each change either acknowledged or known to be missing.
        st = wait_for(lambda: (lambda s: s if s["RhythmBackupPending"] == 0 and (
            s["RhythmBackupAcknowledged"] + s.get("RhythmBackupNode1Unacknowledged", 0) ==
            s["RhythmBackupPublished"]) else None)(backup_status(a)), 20,
            "every change published and answered for")
        held = [b for b in browsers if in_bank(node, b.cookies[COOKIE])[0] == FOUND]
        assert 0 < len(held) < len(browsers)
        # The figures that say what is safe agree with what the bank really holds: the sessions
        # counted as held by the bank are there, and every other one is counted as unbacked.
        # (RhythmBackupAcknowledged counts acknowledgements, not sessions: a session the node
        # asked for again when it first met this server is published and acknowledged again.)
        cache = a.status()
        said = "\n".join(line for line in a.log_text().splitlines() if re.search(r"RS03\d\d", line))
        why = f"{cache}\n{node.status()}\n{said}"
        assert cache["RhythmSessions"] == len(browsers), why
        assert cache["RhythmSessions"] - cache["RhythmSessionsUnbacked"] <= len(held), why
        assert cache["RhythmSessionsUnbacked"] >= len(browsers) - len(held), why
        # The node says it is full in its next heartbeat answer (each second when idle), which may
        # come after the refusals were counted (seen once under load).
        st = wait_for(lambda: (lambda s: s if s["RhythmBackupNode1State"] == "full" else None)(
            backup_status(a)), 5, "the node shown full")
        assert st["RhythmBackupOldestUnacknowledgedMs"] > 0
        assert st["RhythmBackupNode1Unacknowledged"] >= len(browsers) - len(held)
        assert st["RhythmBackupNode1Refused"] > 0 and st["RhythmBackupRefusedByNodes"] > 0
        assert node.status()["full"] is True
        assert len(log_lines(a, "RS0320")) == 1
        # Deleting 40 stored sessions (tombstones are small) makes room for the refused ones.
        deleted = {b.cookies[COOKIE] for b in held[:40]}
        for b in held[:40]:
            assert b.get("/app/set?blob=&n=")[0] == 200  # emptied: deleted
        wait_for(lambda: all_acknowledged(a), 30, "everything acknowledged once there is room")
        assert backup_status(a)["RhythmBackupNode1State"] == "up"
        assert node.status()["full"] is False
        assert log_lines(a, "RS0321")
        for sid in deleted:
            assert in_bank(node, sid)[0] == DELETED
        kept = [sid for sid in sids if sid not in deleted]
        assert len(kept) == len(sids) - 40
        for sid in kept:
            status, _, data = in_bank(node, sid)
            assert status == FOUND and len(re.search(rb"blob=(x*)", data).group(1)) == 30000


def test_a_full_node_that_takes_over_a_dead_nodes_shards_is_not_counted_for_what_it_refused():
    """Two nodes, one copy each session: node-b hangs with the changes of its shards in flight
    and dies; node-a, nearly full, takes over its shards, asks for them again and refuses what
    does not fit. The changes in flight must not count as held by node-a for the head it is
    given before the sessions: every session counted as backed is in the bank."""
    a = RssNode("node-a", extra=["--replicas", "1", "--max-memory", "4M"])
    b = RssNode("node-b", extra=["--replicas", "1"])
    a.peers, b.peers = [b.queries], [a.queries]
    try:
        a.start()
        b.start()
        wait_members([a, b], {"node-a", "node-b"})
        with backed_server("web-a", [a, b]) as web:
            wait_for(lambda: backup_status(web)["RhythmBackupNodesUp"] == 2, 10, "both nodes up")
            stop_node(b)
            browsers = []
            for i in range(200):
                br = Browser(web)
                assert br.get(f"/app/set?fill=30000&n={i}")[0] == 200
                browsers.append(br)
            sids = [br.cookies[COOKIE] for br in browsers]
            os.kill(b.pid, signal.SIGKILL)
            wait_members([a], {"node-a"}, timeout=NOTICE_S + NOTICE_MARGIN_S)
            wait_for(lambda: backup_status(web)["RhythmBackupNode1State"] == "full", 30,
                     "node-a full with node-b's shards")

            def held():
                return sum(1 for sid in sids if in_bank(a, sid)[0] == FOUND)

            def figures_agree():
                cache = web.status()
                backed = cache["RhythmSessions"] - cache["RhythmSessionsUnbacked"]
                in_bank_now = held()
                assert backed <= in_bank_now, f"{backed} counted backed, {in_bank_now} in the bank"
                return backed == in_bank_now and backup_status(web)["RhythmBackupPending"] == 0
            wait_for(figures_agree, 30, "the backed figure equal to the bank's content")
            assert 0 < held() < len(sids)
    finally:
        for n in (a, b):
            n.cleanup()


def test_a_session_misrouted_to_another_server_and_back_loses_no_count():
    """A balancer that misroutes every fourth request to another server, the user 50 ms apart
    (a user's pace; a browser's parallel requests can be closer, see docs/backup.md): each
    server must learn at once that the other took the session over, or it serves its own old
    copy when the session comes back (found by the chaos checker, issue 15: the node told it
    only after its next heartbeat, up to a second later; the user saw 4, 4, 5 where 4, 5, 6)."""
    with RssNode("node-1") as node, backed_server("web-a", [node]) as a, \
            backed_server("web-b", [node]) as b:
        user = Browser(a)
        seen = []
        for i in range(40):
            user.server = b if i % 4 == 3 else a
            status, _, text = user.get("/app/counter")
            seen.append((user.server.name, status, count_of(text)))
            time.sleep(0.05)
        assert seen == [(b.name if i % 4 == 3 else a.name, 200, i + 1) for i in range(40)]


@contextlib.contextmanager
def changed_on_web_a_with_its_agent_stopped(node_extra, web_b_extra):
    """node-1 (`node_extra`), web-a and web-b (`web_b_extra`): the user counted to 3 on web-a
    (in the bank), then web-a's agent was stopped and the user counted 4 there (not in the
    bank: write-behind's window, held open). Yields (node, web-a, web-b, the user, the session
    ID, the agent's PID), the user still on web-a; the agent runs again on leaving."""
    with RssNode("node-1", extra=node_extra) as node, \
            backed_server("web-a", [node]) as a, \
            backed_server("web-b", [node], web_b_extra) as b:
        user, sid = counted_session(a, node, 3)
        wait_for(lambda: backup_status(b)["RhythmBackupNodesUp"] == 1, 10, "web-b's node")
        agent = backup_status(a)["RhythmBackupAgentPid"]
        stop_agent_outside_the_segment_mutex(a, agent)
        try:
            status, _, text = user.get("/app/counter")
            assert status == 200 and count_of(text) == 4
            assert count_in_bank(node, sid) == 3  # web-a's agent has not sent it
            yield node, a, b, user, sid, agent
        finally:
            os.kill(agent, signal.SIGCONT)


def test_a_request_misrouted_before_the_bank_has_the_last_change_still_sees_it():
    """Write-behind leaves a window in which the server that made a change has it and the bank
    does not yet. A request misrouted to another server then took the session over from the
    bank's older copy and rolled the user back (the chaos checker's seeds 32, 43 and 46: 50 to
    120 ms after a change). The node now asks the server that made the session for its newer
    copy before it answers the other's fetch (docs/backup.md, Handover). Here the window is held
    open: web-a's agent is stopped while the user counts on web-a, and let go once the node has
    asked it (the node and web-b wait seconds for it here, not the default 100 and 200 ms, so
    that a loaded test machine cannot close the window first). Before the handover: count 4 on
    web-b after 4 on web-a."""
    answer = {}
    with changed_on_web_a_with_its_agent_stopped(["--handover-wait", "5s"],
                                                 "SessionBackupTimeout 10s") as \
            (node, a, b, user, sid, agent):
        user.server = b
        misrouted = threading.Thread(target=lambda: answer.update(got=user.get("/app/counter")))
        misrouted.start()
        # (Without the handover the answer comes at once, from the bank's copy.)
        wait_for(lambda: answer or node.status()["handovers_asked"] == 1, 10,
                 "the node to ask web-a")
        os.kill(agent, signal.SIGCONT)
        misrouted.join(30)
        status, _, text = answer["got"]
        assert status == 200 and count_of(text) == 5, text
        # The newer copy reached the node with the handover's answer or, let go at the same
        # moment, with web-a's own update: either way before the fetch was answered.
        assert backup_status(a)["RhythmBackupHandedOver"] == 1
        # Back on web-a at a user's pace, once web-b's change is in the bank: web-a gave the
        # session up, and checks it against the bank before serving it.
        wait_for(lambda: count_in_bank(node, sid) == 5, 10, "count=5 in the bank")
        user.server = a
        status, _, text = user.get("/app/counter")
        assert status == 200 and count_of(text) == 6, text


def test_a_take_over_from_a_server_that_does_not_answer_a_handover_waits_until_it_counts_as_hung():
    """The server that made the session is hung (its agent stopped) just after the bank got its
    last change: the node asks it for a newer copy, waits 100 ms, and leaves the fetch
    unanswered (RN0310, counted): the take-over is a 503, and the next request asks again. A
    server merely slow, or whose answer was lost, answers one of them (the fault campaign, seed
    80: under packet loss, misrouted requests took sessions over from the bank's older copy at
    once). Once the agent has been silent 1.5 s it counts as hung, is no longer asked, and the
    take-over goes on from what the bank holds."""
    with RssNode("node-1") as node, backed_server("web-a", [node]) as a, \
            backed_server("web-b", [node]) as b:
        user, sid = counted_session(a, node, 3)
        wait_for(lambda: backup_status(b)["RhythmBackupNodesUp"] == 1, 10, "web-b's node")
        agent = backup_status(a)["RhythmBackupAgentPid"]
        stop_agent_outside_the_segment_mutex(a, agent)
        answers = []  # (seconds since the agent stopped, status, count)
        try:
            stopped = time.monotonic()
            user.server = b

            def answered():
                status, _, text = user.get("/app/counter")
                answers.append((time.monotonic() - stopped, status, count_of(text)))
                return status == 200

            wait_for(answered, 10, "the take-over once web-a counts as hung", interval=0.05)
        finally:
            os.kill(agent, signal.SIGCONT)
        print(f"{len(answers) - 1} answers 503, then count {answers[-1][2]} at "
              f"{answers[-1][0]:.2f} s")
        assert answers[0][1] == 503 and {status for _, status, _ in answers[:-1]} == {503}
        assert answers[-1][2] == 4 and 0.7 <= answers[-1][0] < 3, answers[-1]
        assert node.status()["handovers_unanswered"] >= 1
        wait_for(lambda: "RN0310" in node.log_text(), 5, "RN0310 logged")


def test_a_handover_answered_late_gives_the_next_take_over_the_newer_copy():
    """web-a's agent stopped while the user counts on: the first take-over on web-b waits for
    the handover in vain (a 503); web-a's agent, let go, answers it late (the node stores that
    copy) and sends its change: the next take-over continues from count 4 (before: the first
    was answered from the bank's older copy at once, a count rolled back)."""
    with changed_on_web_a_with_its_agent_stopped(["--handover-wait", "300ms"],
                                                 "SessionBackupTimeout 500ms") as \
            (node, a, b, user, sid, agent):
        user.server = b
        assert user.get("/app/counter")[0] == 503
        assert count_in_bank(node, sid) == 3
        os.kill(agent, signal.SIGCONT)
        status, _, text = user.get("/app/counter")
        assert status == 200 and count_of(text) == 5, text


@contextlib.contextmanager
def web_b_took_over_and_hangs(web_a_extra=""):
    """Two owners (--replicas 2, --handover-wait 5s); web-b is configured with node-a alone, so
    only node-a sees web-b take the user's session over (count 4 after web-a's 3) and holds its
    change. Yields (node_a, web-a, the user, web-b's agent) with that agent stopped (SIGSTOP),
    and lets it run again at the end."""
    with bank(["node-a", "node-b"], 2, extra=["--handover-wait", "5s"]) as (node_a, node_b), \
            backed_server("web-a", [node_a, node_b], web_a_extra) as a, \
            backed_server("web-b", [node_a]) as b:
        user, sid = counted_session(a, node_a, 3)
        wait_for(lambda: count_in_bank(node_b, sid) == 3, 10, "count=3 on node-b too")
        user.server = b
        status, _, text = user.get("/app/counter")
        assert status == 200 and count_of(text) == 4, text
        wait_for(lambda: count_in_bank(node_a, sid) == 4, 10, "web-b's count=4 on node-a")
        assert count_in_bank(node_b, sid) == 3
        agent = backup_status(b)["RhythmBackupAgentPid"]
        stop_agent_outside_the_segment_mutex(b, agent)
        try:
            yield node_a, a, user, agent
        finally:
            os.kill(agent, signal.SIGCONT)


def test_a_fetch_waits_for_the_owner_that_asks_the_taker_not_only_for_the_one_that_vouches():
    """Two owners (--replicas 2); web-b is configured with node-a alone, so only node-a sees web-b
    take the session over and holds its change. Back on web-a, node-b, which saw none of it,
    vouches at once for web-a's count 3, while node-a asks web-b (its agent stopped a moment)
    for a newer copy before it answers: web-a waits for node-a. Before, web-a took node-b's
    answer 20 ms after it came and answered 4 after web-b's 4 (CI under ASan: count 714 after
    714, a server just restarted slow to answer the handover)."""
    with web_b_took_over_and_hangs("SessionBackupTimeout 5s") as (node_a, a, user, agent):
        asked = node_a.status()["handovers_asked"]
        answer = {}
        try:
            user.server = a
            back = threading.Thread(target=lambda: answer.update(got=user.get("/app/counter")))
            back.start()
            wait_for(lambda: answer or node_a.status()["handovers_asked"] > asked, 10,
                     "node-a to ask web-b")
        finally:
            os.kill(agent, signal.SIGCONT)
        back.join(30)
        status, _, text = answer["got"]
        assert status == 200 and count_of(text) == 5, text


def test_an_owner_that_asks_the_taker_is_waited_for_past_three_quarters_of_the_deadline():
    """As above, with web-a's default SessionBackupTimeout (200 ms) and web-b's agent stopped
    longer than that: node-a says at once that it asks web-b (an interim fetch-reply), so web-a
    does not take node-b's count 3 at three quarters of its deadline, as it does from an owner
    that may be hung, but answers 503; once web-b answers the handover, the count goes on from
    web-b's. Before, web-a answered 4 after web-b's 4 (the fault campaign, seed 90: under packet
    loss a handover outlasted 150 ms, 8 changes rolled back)."""
    with web_b_took_over_and_hangs() as (node_a, a, user, agent):
        asked = node_a.status()["handovers_asked"]
        try:
            user.server = a
            status, _, text = user.get("/app/counter")
            assert node_a.status()["handovers_asked"] > asked
            assert status == 503, text
        finally:
            os.kill(agent, signal.SIGCONT)
        status, _, text = counted_on(user)
        assert status == 200 and count_of(text) == 5, text


# ---- nodes that come back to a bank that went on without them --------------------------------

def test_two_owners_away_at_once_get_what_the_bank_took_meanwhile_from_the_node_that_held_it():
    """Both owners of a session's shard hang (SIGSTOP) at once: the third node takes the shard
    over and every change of the session, acknowledged by it alone. The session's server then
    hangs too, so nothing of it can be re-sent. When the two owners resume, they see no change of
    their own (a stopped node excuses its silence) and the third node gives the shard back to
    them. Without the catch-up offer, another server's take-over got their copies from before
    they hung, acknowledged changes lost (the fault campaign, seed 50: a copy 72 changes old;
    here count 4 after 13). Now the third node offers them the shards it held meanwhile, they fill
    from it, and the take-over continues from the last count."""
    with bank(["node-a", "node-b", "node-c"], 2) as nodes, \
            backed_server("web-a", nodes) as a, backed_server("web-b", nodes) as b:
        browser = Browser(a)
        for _ in range(3):
            assert count_of(browser.get("/app/counter")[2]) is not None
        wait_for(lambda: all_acknowledged(a), 10, "count=3 acknowledged")
        shard = shard_of(browser.session_key())
        owners = [n for n in nodes if shard in owned(n)]
        third = next(n for n in nodes if n not in owners)
        assert len(owners) == 2
        held_before = owners[0].fetch(browser.session_key())["version"]
        for n in owners:
            stop_node(n)
        try:
            wait_members([third], {third.name}, timeout=NOTICE_S + NOTICE_MARGIN_S + 1)
            wait_for(lambda: backup_status(a)["RhythmBackupNodesUp"] == 1, 10,
                     "web-a to count the two owners down")
            for i in range(4, 14):
                assert count_of(browser.get("/app/counter")[2]) == i
            wait_for(lambda: all_acknowledged(a), 10, "count=13 acknowledged by the third node")
            assert third.fetch(browser.session_key())["version"] > held_before
            stop_server(a)
            for n in owners:
                os.kill(n.pid, signal.SIGCONT)
            wait_members(nodes, {n.name for n in nodes})
            assert shard not in owned(third)
            browser.server = b
            status, _, text = counted_on(browser)
            assert status == 200 and count_of(text) == 14, text
            # The offers, as the logs and the status pages tell them.
            assert third.status()["catch_up_offers_sent"] >= 2
            for n in owners:
                assert n.status()["catch_up_offers_received"] >= 1
                assert "RN0209" in n.log_text()
            assert "RN0208" in third.log_text()
        finally:
            for n in owners:
                os.kill(n.pid, signal.SIGCONT)
            os.killpg(a.pid, signal.SIGCONT)


# ---- a web server stopped as a whole (a hung host) -------------------------------------------

def test_a_request_that_waited_through_a_stall_is_served_the_current_copy():
    """A counts a session to 10 and is stopped (SIGSTOP of its process group); the user goes on
    to 20 on B; a request sent to A during the stop is answered when A resumes. It must see 20
    (and count 21), not A's copy of 10. (A check that gets no answer within SessionBackupTimeout
    answers 503, and so does a fetch that gets none: the 2 s here leave room for a
    loaded test machine.)"""
    with RssNode("bank-1") as node, \
            backed_server("web-a", [node], "SessionBackupTimeout 2s") as a, \
            backed_server("web-b", [node], "SessionBackupTimeout 2s") as b:
        user, sid = counted_session(a, node, 10)
        stop_server(a)
        try:
            stopped_at = time.monotonic()
            queued = {}
            waiting = threading.Thread(target=lambda: queued.update(
                answer=Browser(a).get("/app/counter", headers={"Cookie": f"{COOKIE}={sid}"})))
            waiting.start()
            user.server = b
            for _ in range(10):
                assert counted_on(user)[0] == 200
            wait_for(lambda: count_in_bank(node, sid) == 20, 10, "count=20 in the bank")
            # Stopped for 2 s at least, as a hung host would be.
            wait_for(lambda: time.monotonic() - stopped_at >= 2, 5, "2 s of stop")
        finally:
            os.killpg(a.pid, signal.SIGCONT)
        waiting.join(30)
        status, _, text = queued["answer"]
        # What the server said of its stall, its nodes and the check, to tell a failure's path.
        said = "\n".join(line for line in a.log_text().splitlines()
                         if re.search(r"RS0(108|203|204|308|322|328)", line))
        assert status == 200, said
        assert count_of(text) == 21, f"{text}\n{said}"
        wait_for(lambda: count_in_bank(node, sid) == 21, 10, "count=21 in the bank")
        user.server = a
        assert count_of(user.get("/app/counter")[2]) == 22
        # What server-status says is safe is in the bank.
        wait_for(lambda: all_acknowledged(a), 10, "A's change acknowledged")
        assert count_in_bank(node, sid) == 22
        assert log_lines(a, "RS0108") and log_lines(a, "RS0203")
        st = backup_status(a)
        assert st["RhythmBackupStalls"] >= 1 and st["RhythmBackupStallReplaced"] >= 1


def test_a_stalled_server_that_cannot_check_a_copy_answers_503_not_the_copy():
    """As above, but the node hangs too before A resumes: A's check gets no answer in time, so A
    answers 503 (Retry-After) rather than its copy of 10; once the node runs again, the user's next
    request counts on from 20."""
    with RssNode("bank-1") as node, backed_server("web-a", [node]) as a, \
            backed_server("web-b", [node], "SessionBackupTimeout 2s") as b:
        user, sid = counted_session(a, node, 10)
        with hung_while_the_user_goes_on(a, b, user, node, sid, 20):
            stop_node(node)
        try:
            user.server = a
            status, headers, _ = user.get("/app/counter")
            assert status == 503 and ("Retry-After", "1") in headers
            # Its check got no answer (RS0204); or, told by the node meanwhile that B took the
            # session over, A dropped its copy and its take-over got none (RS0205).
            assert log_lines(a, "RS0204") or log_lines(a, "RS0205")
        finally:
            os.kill(node.pid, signal.SIGCONT)
        wait_for(lambda: user.get("/app/counter")[0] == 200, 10, "served again")  # count=21
        assert count_of(user.get("/app/counter")[2]) == 22
        wait_for(lambda: all_acknowledged(a), 10, "A's changes acknowledged")
        assert count_in_bank(node, sid) == 22


# ---- two servers continuing one session ------------------------------------------------------

def wait_for_slow_request(server):
    """Until `server` is serving /app/slow (its lock is taken right after the request is read)."""
    wait_for(lambda: "/app/slow" in server.request("/server-status")[2], 10,
             "the slow request in progress")


def test_a_sidelined_server_cannot_make_the_version_another_server_continued():
    """A, holding a session at count=10, is still serving a slow request of it when the user's
    next request lands on B (a balancer that misroutes), which continues the bank's copy (adding
    by=B). A's slow request then saves its own next version (count=11). Both made "version 11"
    before: the node kept B's and ignored A's as a duplicate, and A went on serving count=11 as
    if the bank held it. Now B's continuation is ordered above anything A makes from 10, A's is
    refused, and A, asked again, serves B's data, as the bank holds it."""
    with RssNode("bank-1") as node, backed_server("web-a", [node]) as a, \
            backed_server("web-b", [node]) as b:
        user, sid = counted_session(a, node, 10)
        slow = {}
        thread = threading.Thread(target=lambda: slow.update(
            answer=Browser(a).get("/app/slow?ms=1500", headers={"Cookie": f"{COOKIE}={sid}"})))
        thread.start()
        wait_for_slow_request(a)
        user.server = b
        assert user.get("/app/set?by=B")[0] == 200
        wait_for(lambda: b"by=B" in in_bank(node, sid)[2], 10, "B's change in the bank")
        thread.join(30)
        assert count_of(slow["answer"][2]) == 11  # A's slow request counted from its copy
        wait_for(lambda: all_acknowledged(a), 10, "A's change settled")
        # The bank keeps B's change; A drops its copy and serves the bank's.
        _, version, data = in_bank(node, sid)
        assert b"by=B" in data and b"count=10&" in data  # B's change, on B's copy of 10
        user.server = a
        shown = user.get("/app/show")[2]
        assert "by=B" in shown and "count=10&" in shown, shown
        assert in_bank(node, sid)[1] == version  # and A changed nothing meanwhile


# ---- the first changes on a new connection ---------------------------------------------------

def test_a_node_that_comes_back_empty_is_refilled_without_waiting_for_a_resend():
    """A node restarted empty asks for all its shards at its first answer; what the agent sends
    before the node's subscriptions reach it used to be dropped by the PUB socket and to wait for
    the re-send a second later. Now it goes once the subscriptions are there."""
    node = RssNode("bank-1")
    with node, backed_server("web-a", [node]) as a:
        browsers = [Browser(a) for _ in range(20)]
        for br in browsers:
            br.get("/app/counter")
        wait_for(lambda: all_acknowledged(a), 10, "acknowledged")
        lags = []
        for _ in range(3):
            node.stop()
            node.start()
            started = time.monotonic()
            for br in browsers:
                sid = br.cookies[COOKIE]
                wait_for(lambda: count_in_bank(node, sid) == 1, 10, "the session back")
            lags.append(time.monotonic() - started)
        assert max(lags) < 0.6, lags
        assert not log_lines(a, "RS0309"), "nothing had to be re-sent"


def test_the_first_change_after_a_graceful_restart_needs_no_resend():
    """prefork: the new agent of a graceful restart publishes the changes the old one left
    unacknowledged, and the next ones, without waiting for a re-send."""
    with RssNode("bank-1") as node, backed_server("web-a", [node], mpm="prefork") as a:
        user = Browser(a)
        user.get("/app/counter")
        sid = user.cookies[COOKIE]
        wait_for(lambda: count_in_bank(node, sid) == 1, 10, "count=1")
        for n in range(2, 5):
            a.graceful()
            started = time.monotonic()
            user.get("/app/counter")
            wait_for(lambda: count_in_bank(node, sid) == n, 10, f"count={n} in the bank")
            assert time.monotonic() - started < 0.6
        assert not log_lines(a, "RS0309")


# ---- a backup agent that hangs ---------------------------------------------------------------

def test_a_hung_agent_is_named_shown_excused_and_restarted():
    """The agent stopped for 7 s under load: within 5 s the parent logs a warning naming it and
    server-status shows it hung; once it runs again its nodes are not blamed. Stopped for good,
    it is killed after 30 s and a new agent loses nothing."""
    with RssNode("bank-1") as node, backed_server("web-a", [node]) as a:
        agent = wait_for(lambda: backup_status(a)["RhythmBackupAgentPid"], 10, "the agent")
        load_stop = threading.Event()
        counts = []

        def load():
            b = Browser(a)
            while not load_stop.is_set():
                counts.append(count_of(b.get("/app/counter")[2]))
            counts.append(b.cookies[COOKIE])

        loader = threading.Thread(target=load)
        loader.start()
        try:
            wait_for(lambda: all_acknowledged(a) and counts, 10, "load acknowledged")
            stop_agent_outside_the_segment_mutex(a, agent)
            stopped_at = time.monotonic()
            wait_for(lambda: log_lines(a, "RS0324"), 6, "the warning")
            assert time.monotonic() - stopped_at < 5.5
            assert f"pid {agent}" in log_lines(a, "RS0324")[0]
            # The figures are numbers (APR's formatter has no %lld: it printed the format).
            assert re.search(r"no progress for \d+ ms .* after 30 s", log_lines(a, "RS0324")[0])
            st = a.status()
            assert st["RhythmBackupAgentState"] == "hung"
            assert st["RhythmBackupAgentLastTurnMs"] >= 4000
            wait_for(lambda: time.monotonic() - stopped_at >= 7, 5, "7 s of stop")
            os.kill(agent, signal.SIGCONT)
            wait_for(lambda: a.status()["RhythmBackupAgentState"] == "running", 5, "running")
            wait_for(lambda: log_lines(a, "RS0322") and log_lines(a, "RS0326"), 5, "excused")
            assert not log_lines(a, "RS0308"), "the node was blamed for the agent's stop"
            wait_for(lambda: all_acknowledged(a), 10, "acknowledged again")
            # Stopped for good: killed after 30 s, and another agent takes over.
            os.kill(agent, signal.SIGSTOP)
            wait_for(lambda: backup_status(a)["RhythmBackupAgentPid"] not in (0, agent), 40,
                     "a new agent")
            assert log_lines(a, "RS0325") and log_lines(a, "RS0314")
            assert backup_status(a)["RhythmBackupAgentStarts"] == 2
        finally:
            load_stop.set()
            loader.join(30)
        sid = counts[-1]
        wait_for(lambda: all_acknowledged(a), 10, "everything acknowledged by the new agent")
        assert count_in_bank(node, sid) == counts[-2]


def test_a_server_stopped_longer_than_the_heartbeat_timeout_takes_over_on_its_first_request():
    """B is stopped for 5 s (the nodes close their ends of its connections after 3 s of silence)
    and, as it resumes, gets a request for a session A holds. Its agent's sends fail until its
    connections are made again; that is not a bank out of reach: B must wait for them and take
    the session over, not start a new one (found by the chaos checker, issue 15: count=1).
    SessionBackupTimeout 3s: making the connections again can take longer than the default
    200 ms on a loaded machine, and a 503 then (the next request asks again) is no failure."""
    with RssNode("bank-1") as node, backed_server("web-a", [node]) as a, \
            backed_server("web-b", [node], "SessionBackupTimeout 3s") as b:
        user, sid = counted_session(a, node, 5)
        stop_server(b)
        time.sleep(5)
        os.killpg(b.pid, signal.SIGCONT)
        user.server = b
        status, _, text = user.get("/app/counter")
        said = "\n".join(line for line in b.log_text().splitlines() if "RS" in line)
        assert (status, count_of(text)) == (200, 6), f"{said}\nthe node's log:\n{node.log_text()}"
        assert user.cookies[COOKIE] == sid


# ---- a web server cut off from the bank ------------------------------------------------------

class Relay:
    """A TCP relay on 127.0.0.1 to `target` ("tcp://127.0.0.1:PORT") that a test can cut (every
    connection closed, new ones refused) and heal: a partition between one web server and a node's
    queries endpoint. Or it refuses new connections only (refuse_new), keeping those it has."""

    def __init__(self, target):
        self.target = ("127.0.0.1", int(target.rsplit(":", 1)[1]))
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.queries = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"  # as a node's
        self.cut = threading.Event()
        self.refusing = threading.Event()
        self.stop = threading.Event()
        self.conns = []
        # A connection accepted while partition() runs must not outlive it.
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.listener.settimeout(0.05)
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            with self.lock:
                if self.cut.is_set() or self.refusing.is_set():
                    client.close()  # cut: the node never sees the attempt
                    continue
                server = socket.create_connection(self.target)
                self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src, dst):
        try:
            while not self.cut.is_set():
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def partition(self):
        with self.lock:
            self.cut.set()
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.conns = []

    def heal(self):
        self.cut.clear()
        self.refusing.clear()

    def refuse_new(self):
        self.refusing.set()

    def close(self):
        self.stop.set()
        self.partition()
        self.thread.join(5)
        self.listener.close()


def test_no_take_over_from_a_copy_nobody_vouches_for_while_the_owner_with_the_newer_one_is_out():
    """The fault campaign, s100b: A, out of one owner's reach (node-1: A's heartbeats to it cut),
    has its changes 6 to 10 acknowledged by the other owner alone (node-2); node-2 then hangs, and
    the user's next request lands on B, which reaches node-1 only. node-1 holds count 5 and cannot
    ask A (silent to it): before, B took count 5 over and the user lost five acknowledged counts
    (count 6 after 10). Now node-1 cannot vouch for its copy and B answers 503 while node-2 is out
    lately; once node-2 is back, the user goes on from 10."""
    with bank(["node-1", "node-2"], 2) as (node1, node2):
        relay = Relay(node1.queries)
        try:
            with backed_server("web-a", [relay, node2]) as a, \
                    backed_server("web-b", [node1, node2]) as b:
                user, sid = counted_session(a, node1, 5)
                wait_for(lambda: count_in_bank(node2, sid) == 5, 10, "count=5 on node-2")
                relay.partition()
                cut_at = time.monotonic()
                wait_for(lambda: backup_status(a)["RhythmBackupNodesUp"] == 1, 10,
                         "A to count node-1 down")
                for i in range(6, 11):
                    assert count_of(user.get("/app/counter")[2]) == i
                wait_for(lambda: all_acknowledged(a), 10, "count=10 acknowledged by node-2 alone")
                assert count_in_bank(node2, sid) == 10 and count_in_bank(node1, sid) == 5
                stop_node(node2)
                try:
                    wait_for(lambda: backup_status(b)["RhythmBackupNodesUp"] == 1, 10,
                             "B to count node-2 down")
                    assert 1.5 < time.monotonic() - cut_at < 10  # A silent to node-1 lately
                    user.server = b
                    status, _, text = user.get("/app/counter")
                    assert status == 503, text
                    # Said as such, or as no answer in time where node-1 was slow to answer
                    # (it is taking node-2's shards over): a 503 either way.
                    said = "\n".join(line for line in b.log_text().splitlines() if "RS0205" in line)
                    assert "out of reach lately may hold a newer copy" in said or \
                        "no answer from the session's owners in time" in said, said
                finally:
                    os.kill(node2.pid, signal.SIGCONT)
                status, _, text = counted_on(user, timeout=15)
                assert (status, count_of(text)) == (200, 11), text
        finally:
            relay.close()


def test_two_servers_each_out_of_one_owners_reach_do_not_both_take_a_session_over():
    """CI on 61107b6 (the default campaign with `loss`): web-3, out of node-2's reach, took a
    session back through node-3 alone and answered three changes; web-2, out of node-3's reach,
    took it over 0.2 s later through node-2 alone, which had not seen web-3's take-over and
    vouched for the copy from before them. Here A made the session (count 5, on both nodes); C is
    out of node-2's reach and B out of node-1's. Before, C took the session over through node-1
    (which asked A, and vouched) and counted 6 to 8, and B then took it over through node-2 from
    count 5: 6 after 8. An owner's vouching covers what it saw only: while an owner went out of
    the server's reach lately, a take-over is a 503, and once the cuts heal the user goes on
    from the last count answered."""
    with bank(["node-1", "node-2"], 2) as (node1, node2):
        relay_b, relay_c = Relay(node1.queries), Relay(node2.queries)
        try:
            with backed_server("web-a", [node1, node2]) as a, \
                    backed_server("web-b", [relay_b, node2]) as b, \
                    backed_server("web-c", [node1, relay_c]) as c:
                for server in (b, c):
                    wait_for(lambda: backup_status(server)["RhythmBackupNodesUp"] == 2, 10,
                             f"{server.name} to reach both nodes")
                user, sid = counted_session(a, node1, 5)
                wait_for(lambda: count_in_bank(node2, sid) == 5, 10, "count=5 on node-2")
                relay_b.partition()
                relay_c.partition()
                cut_at = time.monotonic()
                for server in (b, c):
                    wait_for(lambda: backup_status(server)["RhythmBackupNodesUp"] == 1, 10,
                             f"{server.name} to count the node behind its relay down")
                answers = []  # (server, status, text)

                def ask_on(server):
                    user.server = server
                    status, _, text = user.get("/app/counter")
                    answers.append((server.name, status, text))

                for _ in range(3):
                    ask_on(c)
                wait_for(lambda: all_acknowledged(c), 10, "C's changes acknowledged")
                ask_on(b)
                assert time.monotonic() - cut_at < 10  # both still out lately
                relay_b.heal()
                relay_c.heal()
                status, _, text = counted_on(user, timeout=15)
                answers.append((b.name, status, text))
                counts = [count_of(text) for _, status, text in answers if status == 200]
                assert counts == list(range(6, 6 + len(counts))), answers
                assert [status for _, status, _ in answers[:4]] == [503] * 4, answers
        finally:
            relay_b.close()
            relay_c.close()


def gain_while_the_owners_are_away(b_started_before):
    """A made a session (count 5) whose shard two nodes own; A is cut off from the third node,
    one owner hangs and B cannot reach the other; the third node takes the hung owner's part,
    filled from the other owner, which alone acknowledges A's next changes (to 8). B runs from
    the start (it knew both owners), or starts only then and reaches the third node alone.
    Returns what B answers the user then, and the user's next count on B once the owner out of
    B's reach is back."""
    with bank(["node-1", "node-2", "node-3"], 2) as nodes:
        relays_a = [Relay(n.queries) for n in nodes]
        relays_b = [Relay(n.queries) for n in nodes]
        hung = None
        try:
            with backed_server("web-a", relays_a) as a, contextlib.ExitStack() as later:
                servers = [a]
                if b_started_before:
                    servers.append(later.enter_context(backed_server("web-b", relays_b)))
                for server in servers:
                    wait_for(lambda: backup_status(server)["RhythmBackupNodesUp"] == 3, 10,
                             f"{server.name} to reach every node")
                user = Browser(a)
                for i in range(1, 6):
                    assert count_of(user.get("/app/counter")[2]) == i
                sid = user.cookies[COOKIE]
                wait_for(lambda: all_acknowledged(a), 10, "count=5 acknowledged")
                shard = shard_of(user.session_key())
                hung, away = [i for i, n in enumerate(nodes) if shard in owned(n)]
                third = next(i for i in range(3) if i not in (hung, away))
                relays_a[third].partition()  # A silent to the third node: it cannot vouch
                relays_b[away].partition()
                stop_node(nodes[hung])
                cut_at = time.monotonic()
                if b_started_before:  # both owners down for B before the third node gains
                    wait_for(lambda: backup_status(servers[1])["RhythmBackupNodesUp"] == 1, 10,
                             "B to count both owners down")
                wait_for(lambda: shard in owned(nodes[third]), NOTICE_S + NOTICE_MARGIN_S + 5,
                         "the third node to take the hung owner's part")
                wait_for(lambda: count_in_bank(nodes[third], sid) == 5, 10,
                         "the third node filled from the other owner")
                for i in range(6, 9):  # to the owner out of B's reach alone
                    assert count_of(user.get("/app/counter")[2]) == i
                wait_for(lambda: all_acknowledged(a), 10, "count=8 acknowledged by one owner")
                assert count_in_bank(nodes[away], sid) == 8
                assert count_in_bank(nodes[third], sid) == 5
                if b_started_before:
                    b = servers[1]
                    # B's heartbeats answered by the third node since it gained the shard.
                    seen = nodes[third].status()["heartbeats"]
                    wait_for(lambda: nodes[third].status()["heartbeats"] >= seen + 2, 5,
                             "B's next heartbeats answered by the third node")
                else:
                    b = later.enter_context(backed_server("web-b", relays_b))
                wait_for(lambda: backup_status(b)["RhythmBackupNodesUp"] == 1, 10,
                         "B to reach the third node alone")
                assert 1.5 < time.monotonic() - cut_at < 10  # A silent to it lately
                user.server = b
                status, _, text = user.get("/app/counter")
                said = "\n".join(line for line in b.log_text().splitlines() if "RS0205" in line)
                relays_b[away].heal()
                os.kill(nodes[hung].pid, signal.SIGCONT)
                return (status, text, said), counted_on(user, timeout=15)
        finally:
            if hung is not None:
                os.kill(nodes[hung].pid, signal.SIGCONT)
            for relay in relays_a + relays_b:
                relay.close()


def test_one_node_gaining_a_shard_does_not_make_both_owners_out_of_reach_count_as_replaced():
    """The fault campaign under ASan, s108-80all-asan (fix 38): B had counted both owners of a
    session's shard down, one hung and one out of B's reach only. The third node took the hung
    owner's part and told B so in its next heartbeat answer; B then counted neither owner an
    owner any more, asked the third node alone, took its copy, which it could not vouch for (A,
    which made it, silent to it), and the user lost the changes A had made since, acknowledged by
    the owner out of B's reach (here count 6 after 8). One gain replaces one owner, not both: B
    answers 503 while the owner out of its reach was out lately, and the user goes on from 8 once
    it is back."""
    (status, text, said), (status_after, _, text_after) = gain_while_the_owners_are_away(True)
    assert status == 503, text
    assert "out of reach lately may hold a newer copy" in said, said
    assert (status_after, count_of(text_after)) == (200, 9), text_after


def test_a_take_over_waits_for_a_node_not_reached_since_the_server_started():
    """As above, but B starts only then and reaches the third node alone (fix 39; the test above
    met it before it waited for B to reach every node): what the nodes B has not reached own is
    not known, and B answers 503, where before it took the third node's copy (count 6 after 8)."""
    (status, text, said), (status_after, _, text_after) = gain_while_the_owners_are_away(False)
    assert status == 503, text
    assert "out of reach lately may hold a newer copy" in said, said
    assert (status_after, count_of(text_after)) == (200, 9), text_after


def test_a_server_cut_off_from_the_bank_checks_its_copies_when_back_in_touch():
    """A reaches the bank through a relay that is cut while the user goes on from 10 to 20 on B.
    Once A is back in touch, it checks each copy before serving it (the nodes' refusals, which
    tell it of sessions taken over, arrive only with its first heartbeats): the user, back on A,
    counts on from 20, and another, who stayed on A, from his own count."""
    with RssNode("bank-1") as node:
        relay = Relay(node.queries)
        try:
            with backed_server("web-a", [relay]) as a, backed_server("web-b", [node]) as b:
                stays, _ = counted_session(a, node, 1)
                user, sid = counted_session(a, node, 10)
                relay.partition()
                wait_for(lambda: backup_status(a)["RhythmBackupNodesUp"] == 0, 10, "A cut off")
                user.server = b
                for _ in range(10):
                    user.get("/app/counter")
                wait_for(lambda: count_in_bank(node, sid) == 20, 10, "count=20 in the bank")
                relay.heal()
                wait_for(lambda: log_lines(a, "RS0328"), 10, "A back in touch")
                user.server = a
                assert count_of(user.get("/app/counter")[2]) == 21
                # Every copy is checked once: the user who stayed on A keeps counting.
                assert count_of(stays.get("/app/counter")[2]) == 2
                st = backup_status(a)
                assert st["RhythmBackupStalls"] == 1 and st["RhythmBackupStallChecks"] >= 1
                wait_for(lambda: all_acknowledged(a), 10, "A's changes acknowledged")
                assert count_in_bank(node, sid) == 21
                assert count_in_bank(node, stays.cookies[COOKIE]) == 2
        finally:
            relay.close()


def test_a_node_back_after_the_server_counted_it_down_has_its_copies_checked():
    """Two nodes, --replicas 1; A reaches each through a relay, and the relay to the session's
    owner is cut, so A is never cut off from the bank. The owner, no longer hearing A, cannot ask
    it for a handover and lets B take the session over from its copy; B counts on. When the owner
    answers A again, A checks each copy before serving it: the user, back on A, counts on from
    B's count. Before, A served its own copy (the fault campaign, seed 90: under packet loss a
    server off one node for 2 s served its copy 15 changes behind)."""
    with bank(["node-a", "node-b"], 1) as nodes:
        relays = [Relay(n.queries) for n in nodes]
        try:
            with backed_server("web-a", relays) as a, backed_server("web-b", nodes) as b:
                user = Browser(a)
                for _ in range(5):
                    user.get("/app/counter")
                sid = user.cookies[COOKIE]
                owner = nodes.index(wait_for(
                    lambda: next((n for n in nodes if count_in_bank(n, sid) == 5), None), 10,
                    "count=5 in the bank"))
                relays[owner].partition()
                wait_for(lambda: backup_status(a)["RhythmBackupNodesUp"] == 1, 10,
                         "A to count the owner down")
                user.server = b
                status, _, text = counted_on(user)  # 503 until the owner counts A hung
                assert status == 200 and count_of(text) == 6, text
                assert count_of(user.get("/app/counter")[2]) == 7
                wait_for(lambda: count_in_bank(nodes[owner], sid) == 7, 10, "B's 7 in the bank")
                relays[owner].heal()
                wait_for(lambda: backup_status(a)["RhythmBackupNodesUp"] == 2, 10,
                         "the owner to answer A again")
                user.server = a
                status, _, text = counted_on(user)
                assert status == 200 and count_of(text) == 8, text
                assert log_lines(a, "RS0332") and not log_lines(a, "RS0328")  # not cut off
        finally:
            for relay in relays:
                relay.close()


def test_a_session_taken_over_while_its_server_changes_agents_is_checked_before_it_is_served():
    """A graceful restart replaces A's agent. What the bank tells A in between (that B took a
    session over) waits for the new agent's first heartbeat, and a request can come first: every
    session is checked once after a new agent starts. A's link to the bank is cut across the
    restart (a relay) so that the user's request comes back to A before the new agent can have
    heard anything: answered 503 while the bank cannot be asked, then the count goes on from B's.
    Before, A served its own copy at once: count 6 after B's 6 (the fault campaign: a server in a
    graceful restart served its copy 50 ms after a misrouted request continued the session)."""
    with RssNode("bank-1") as node:
        relay = Relay(node.queries)
        try:
            with backed_server("web-a", [relay]) as a, backed_server("web-b", [node]) as b:
                stays, _ = counted_session(a, node, 1)
                user, sid = counted_session(a, node, 5)
                before = node.status()["connections_queries"]
                relay.partition()
                try:
                    wait_for(lambda: node.status()["connections_queries"] < before, 10,
                             "the node to see A's agent gone")
                except TimeoutError as e:
                    # Once under ASan in CI, not understood: say what the node counted.
                    raise AssertionError(
                        f"{e}: {before} queries connections before the cut; the node's status "
                        f"now {node.status()}; its log:\n{node.log_text()[-4000:]}") from e
                user.server = b
                assert count_of(user.get("/app/counter")[2]) == 6
                wait_for(lambda: count_in_bank(node, sid) == 6, 10, "B's count=6 in the bank")
                a.graceful()
                assert log_lines(a, "RS0331"), "A's log names the new agent"
                user.server = a
                status, _, text = user.get("/app/counter")
                assert status == 503, text
                relay.heal()
                wait_for(lambda: backup_status(a)["RhythmBackupNodesUp"] == 1, 10,
                         "A back in touch")
                status, _, text = counted_on(user)
                assert status == 200 and count_of(text) == 7, text
                # Every copy is checked once: the user who stayed on A counts on from his own.
                assert count_of(stays.get("/app/counter")[2]) == 2
                wait_for(lambda: all_acknowledged(a), 10, "A's changes acknowledged")
                assert count_in_bank(node, sid) == 7
        finally:
            relay.close()


def test_a_take_over_while_the_server_restarts_waits_for_its_next_agent():
    """A restarts gracefully while a request of the user's holds the session; that request saves
    count 6 after A's old agent stopped, and A's next agent cannot reach the node yet (the relay
    takes no new connection). The user, sent to B meanwhile, must not be served from the bank's
    count 5: the old agent told the node that A restarts, so the node leaves B's take-over
    unanswered (503) until A's next agent reaches it, then asks that agent for its copy: count 7.
    Before, the node had no agent of A to ask and answered from its copy: count 6 on B after 6 on
    A (the fault campaign, seed 90: a take-over during a graceful restart under packet loss)."""
    with RssNode("bank-1") as node:
        relay = Relay(node.queries)
        try:
            with backed_server("web-a", [relay]) as a, backed_server("web-b", [node]) as b:
                user, sid = counted_session(a, node, 5)
                relay.refuse_new()
                with concurrent.futures.ThreadPoolExecutor(1) as pool:
                    slow = pool.submit(user.get, "/app/slow?ms=1500")
                    time.sleep(0.2)  # the scenario: the request holds the session
                    a.graceful()
                    status, _, text = slow.result()
                assert (status, count_of(text)) == (200, 6), text
                assert count_in_bank(node, sid) == 5
                wait_for(lambda: "RN0312" in node.log_text(), 5, "the node told A restarts")
                user.server = b
                status, _, text = user.get("/app/counter")
                assert status == 503, text
                assert "RN0313" in node.log_text()
                relay.heal()
                wait_for(lambda: backup_status(a)["RhythmBackupNodesUp"] == 1, 10,
                         "A's next agent in touch")
                status, _, text = counted_on(user)
                assert status == 200 and count_of(text) == 7, text
                wait_for(lambda: count_in_bank(node, sid) == 7, 10, "count=7 in the bank")
        finally:
            relay.close()


def test_a_server_that_stalled_does_not_serve_its_copy_while_the_bank_is_silent():
    """A is stopped (a hung host) while its user goes on from 5 to 10 on B, and resumes cut off
    from the bank (a relay), so that every node falls silent for it 1.5 s later. The bank's
    silence says nothing of the stall, during which another server may have taken the session
    over: the user back on A is answered 503, not count 6, and counts 11 once A is back in
    touch. Before, A served its copy once every node was silent (the fault campaign, seed 90:
    web-1, paused 8 s, resumed under packet loss and served a copy 64 changes old)."""
    with RssNode("bank-1") as node:
        relay = Relay(node.queries)
        try:
            with backed_server("web-a", [relay]) as a, backed_server("web-b", [node]) as b:
                user, sid = counted_session(a, node, 5)
                with hung_while_the_user_goes_on(a, b, user, node, sid, 10):
                    relay.partition()
                wait_for(lambda: backup_status(a)["RhythmBackupNodesUp"] == 0, 10,
                         "A to count every node silent")
                user.server = a
                status, _, text = user.get("/app/counter")
                assert status == 503, text
                # Its check got no answer (RS0204); or, told by the node before the cut that B
                # took the session over (in A's socket buffers), A dropped its copy and its
                # take-over got none (RS0205; met in CI under ASan).
                assert log_lines(a, "RS0204") or log_lines(a, "RS0205")
                relay.heal()
                wait_for(lambda: backup_status(a)["RhythmBackupNodesUp"] == 1, 10,
                         "A back in touch")
                status, _, text = counted_on(user)
                assert status == 200 and count_of(text) == 11, text
        finally:
            relay.close()
