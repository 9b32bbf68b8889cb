"""A bank of rss_nodes as real processes on 127.0.0.1: membership from pings, shard ownership by
rendezvous hashing over the live members, subscriptions following ownership, hung and dead nodes
noticed and counted back, gained shards filled from peers' snapshots and the agents' re-sends,
and a node added to a running bank taking only the shards it now owns."""

import contextlib
import os
import signal
import struct
import threading
import time

import zmq

import rss_node_fixture as rf
from rhythm_httpd import Browser, backed_server, wait_for
from rss_node_fixture import RssNode, new_key

# A peer silent for 3 s is down: a hung node is noticed 2 to 3 s after it stops (its last pong
# came up to a ping interval before); the margin is for the node's 100 ms tick and the status
# requests that watch it.
NOTICE_S = 3.0
NOTICE_MARGIN_S = 0.5


def owned(node):
    status = node.status()
    shards = rf.parse_shard_ranges(status["shards_owned_list"])
    assert len(shards) == status["shards_owned"]
    return shards


def member_states(status):
    return {m["name"]: m["state"] for m in status["members"] if m["name"]}


@contextlib.contextmanager
def bank(names, replicas, extra_peers=(), extra=()):
    """Nodes that all know each other (and `extra_peers`, endpoints of nodes not started), each
    started with `extra` too, once each sees every one of them up and has decided what it owns."""
    nodes = [RssNode(name=n, extra=["--replicas", str(replicas), *extra]) for n in names]
    try:
        for n in nodes:
            n.peers = [o.queries for o in nodes if o is not n] + list(extra_peers)
        for n in nodes:
            n.start()
        wait_members(nodes, set(names))
        yield nodes
    finally:
        for n in nodes:
            n.cleanup()


def wait_members(nodes, up, timeout=10):
    """Until each node of `nodes` sees exactly the names in `up` up (itself included) and has
    decided what it owns."""
    def seen(node):
        status = node.status()
        states = member_states(status)
        return status["ownership_decided"] and {n for n, s in states.items() if s == "up"} == up
    for node in nodes:
        wait_for(lambda: seen(node), timeout, f"{node.name} to see {sorted(up)} up")


def copies_per_shard(nodes):
    counts = [0] * rf.SHARD_COUNT
    for node in nodes:
        for s in owned(node):
            counts[s] += 1
    return counts


def publisher_to(nodes):
    """An agent's PUB, connected to every node's updates endpoint."""
    pub = nodes[0].publisher()
    for n in nodes[1:]:
        pub.socket.connect(n.updates)
    return pub


def publish_sessions(nodes, count, version, data, copies):
    """`count` new sessions published to the bank, once every node has subscribed; returns their
    keys once the nodes hold `copies` of each."""
    pub = publisher_to(nodes)
    pub.wait_subscribed()  # the nodes' subscriptions together cover every shard
    keys = [new_key() for _ in range(count)]
    for k in keys:
        pub.publish(k, version, data)
    wait_for(lambda: sum(n.status()["sessions"] for n in nodes) == copies * count, 10,
             f"every session stored {copies} time(s)")
    pub.close()
    return keys


def holders(nodes, key):
    return {n.name for n in nodes if n.fetch(key)["status"] == rf.FOUND}


def test_replicas_1_gives_disjoint_owners_covering_every_shard():
    with bank(["node-a", "node-b", "node-c"], replicas=1) as nodes:
        sets = {n.name: owned(n) for n in nodes}
        assert sum(len(s) for s in sets.values()) == rf.SHARD_COUNT
        assert set().union(*sets.values()) == set(range(rf.SHARD_COUNT))
        assert all(len(s) > 200 for s in sets.values())  # spread, not lopsided
        for n in nodes:
            status = n.status()
            assert status["shards_short"] == 0
            assert status["shards_subscribed"] == len(sets[n.name])
            assert {m["state"] for m in status["members"]} == {"up"}
            assert {m["endpoint"] for m in status["members"]} == {o.queries for o in nodes}
        keys = publish_sessions(nodes, 150, 1, b"one copy", copies=1)
        for k in keys:
            owner = {name for name, s in sets.items() if rf.shard_of(k) in s}
            assert holders(nodes, k) == owner


def test_replicas_2_puts_every_shard_on_two_nodes():
    with bank(["node-a", "node-b", "node-c"], replicas=2) as nodes:
        assert copies_per_shard(nodes) == [2] * rf.SHARD_COUNT
        keys = publish_sessions(nodes, 100, 1, b"two copies", copies=2)
        for k in keys:
            assert len(holders(nodes, k)) == 2


def test_a_hung_node_is_noticed_and_counted_back():
    with bank(["node-a", "node-b", "node-c"], replicas=2) as nodes:
        a, b, c = nodes
        everyone = {"node-a", "node-b", "node-c"}
        before = {n.name: owned(n) for n in (a, b)}
        c_changes = c.status()["ownership_changes"]
        os.kill(c.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            wait_members([a, b], {"node-a", "node-b"}, timeout=NOTICE_S + NOTICE_MARGIN_S)
            noticed = time.monotonic() - stopped
            assert noticed <= NOTICE_S + NOTICE_MARGIN_S
            # Two live nodes, two replicas: each owns every shard, and none is short.
            for n in (a, b):
                wait_for(lambda: len(owned(n)) == rf.SHARD_COUNT, 2, f"{n.name} to own all")
                assert member_states(n.status())["node-c"] == "down"
                assert n.status()["shards_short"] == 0
        finally:
            os.kill(c.pid, signal.SIGCONT)
        resumed = time.monotonic()
        wait_members(nodes, everyone, timeout=NOTICE_S)
        assert time.monotonic() - resumed <= NOTICE_S
        for n in (a, b):
            wait_for(lambda: owned(n) == before[n.name], 2, f"{n.name}'s shards to move back")
        assert copies_per_shard(nodes) == [2] * rf.SHARD_COUNT
        # node-c's own view never changed: its silence while stopped was its own.
        assert c.status()["ownership_changes"] == c_changes


class Agent:
    """A web server's agent, in Python: publishes sessions to every node, heartbeats each node,
    and answers a Resend by publishing again every session of the shards it names."""

    def __init__(self, nodes):
        self.pub = publisher_to(nodes)
        self.agent_id = self.pub.agent_id
        self.requesters = {n.name: rf.Requester(n.context, n.queries) for n in nodes}
        self.sessions = {}  # key -> (version, data)
        self.resent_shards = {}  # node name -> shards asked for
        self.next_id = 1

    def publish(self, key, version, data):
        self.sessions[key] = (version, data)
        self.pub.publish(key, version, data)

    def heartbeat(self, names):
        """One heartbeat to each named node; answers what comes back."""
        for name in names:
            req = self.requesters[name]
            req.send_raw(rf.heartbeat_frames(self.next_id, self.agent_id, self.pub.epoch,
                                             self.pub.sequence + 1))
            self.next_id += 1
        for name in names:
            req = self.requesters[name]
            while req.socket.poll(200):
                reply = rf.decode_reply(req.socket.recv_multipart())
                if reply["type"] == rf.RESEND:
                    self.resent_shards.setdefault(name, set()).update(reply["shards"])
                    for key, (version, data) in self.sessions.items():
                        if rf.shard_of(key) in reply["shards"]:
                            self.pub.publish(key, version, data)

    def close(self):
        self.pub.close()
        for r in self.requesters.values():
            r.close()


def test_survivors_take_over_a_killed_nodes_shards_and_end_with_two_copies():
    with bank(["node-a", "node-b", "node-c"], replicas=2) as nodes:
        a, b, c = nodes
        before = {n.name: owned(n) for n in (a, b)}
        agent = Agent(nodes)
        try:
            agent.pub.wait_subscribed()
            agent.heartbeat(["node-a", "node-b", "node-c"])
            for _ in range(300):
                agent.publish(new_key(), 3, os.urandom(64))
            wait_for(lambda: sum(n.status()["sessions"] for n in nodes) == 600, 10,
                     "every session on two nodes")
            c.kill()
            wait_members([a, b], {"node-a", "node-b"}, timeout=NOTICE_S + NOTICE_MARGIN_S)

            def two_live_copies():
                agent.heartbeat(["node-a", "node-b"])
                return all(n.status()["sessions"] == 300 for n in (a, b))
            wait_for(two_live_copies, 15, "every session back on two live nodes")
            for key, (version, data) in agent.sessions.items():
                for n in (a, b):
                    reply = n.fetch(key)
                    assert reply["status"] == rf.FOUND and reply["version"] == version
                    assert reply["data"] == data
            # Each survivor asked the agent for the shards it took from node-c.
            for n in (a, b):
                gained = owned(n) - before[n.name]
                assert gained and gained <= agent.resent_shards[n.name]
            # And filled them from the other survivor, which held each of them too.
            assert a.status()["snapshot_records_applied"] + \
                b.status()["snapshot_records_applied"] > 0
        finally:
            agent.close()


def test_a_fourth_node_takes_only_the_shards_it_now_owns():
    d = RssNode(name="node-d", extra=["--replicas", "2"])
    try:
        with bank(["node-a", "node-b", "node-c"], replicas=2, extra_peers=[d.queries]) as nodes:
            three = {"node-a", "node-b", "node-c"}
            for n in nodes:
                assert member_states(n.status()).get("node-d") is None  # never answered
                assert any(m["endpoint"] == d.queries and m["state"] == "unknown"
                           for m in n.status()["members"])
            before = {n.name: owned(n) for n in nodes}
            pub = publisher_to(nodes)
            pub.wait_subscribed()
            keys = [new_key() for _ in range(200)]
            for k in keys:
                pub.publish(k, 5, b"before the fourth")
            wait_for(lambda: sum(n.status()["sessions"] for n in nodes) == 2 * len(keys), 10,
                     "every session on two nodes")

            d.peers = [n.queries for n in nodes]
            d.start()
            wait_members(nodes + [d], three | {"node-d"})
            after = {n.name: owned(n) for n in nodes + [d]}
            moved = set()
            for n in nodes:
                assert after[n.name] <= before[n.name]  # the old nodes only give shards away
                moved |= before[n.name] - after[n.name]
            assert moved == after["node-d"]  # every shard that moved, moved to node-d
            assert copies_per_shard(nodes + [d]) == [2] * rf.SHARD_COUNT
            # node-d is filled from the nodes that held its shards...
            mine = [k for k in keys if rf.shard_of(k) in after["node-d"]]
            assert mine
            wait_for(lambda: d.status()["sessions"] == len(mine), 10, "node-d filled")
            assert d.status()["shards_short"] == 0
            for k in mine:
                reply = d.fetch(k)
                assert reply["status"] == rf.FOUND and reply["version"] == 5
            # ... which drop what they gave away once it has had time to copy it.
            wait_for(lambda: sum(n.status()["sessions"] for n in nodes + [d]) == 2 * len(keys),
                     20, "the shards given away dropped")
            # From now on each new session goes to its two owners, and to no one else.
            mark = pub.mark()
            pub.socket.connect(d.updates)
            wait_for(lambda: pub.mark() >= mark + len(after["node-d"]), 10,
                     "node-d's subscriptions")
            later = [new_key() for _ in range(100)]
            for k in later:
                pub.publish(k, 1, b"after the fourth")
            wait_for(lambda: sum(n.status()["sessions"] for n in nodes + [d]) ==
                     2 * (len(keys) + len(later)), 10, "the new sessions stored twice")
            for k in later:
                assert holders(nodes + [d], k) == {
                    name for name, s in after.items() if rf.shard_of(k) in s}
            pub.close()
    finally:
        d.cleanup()


def test_a_web_server_gets_every_change_acknowledged_by_a_bank_that_splits_the_shards():
    """The real agent against nodes that each see only their shards: acknowledgements come shard
    by shard, so every change settles, on exactly --replicas nodes."""
    for replicas in (1, 2):
        with bank(["node-a", "node-b", "node-c"], replicas) as nodes:
            with backed_server("web1", nodes) as web:
                browsers = [Browser(web) for _ in range(60)]
                for b in browsers:
                    for _ in range(2):
                        assert b.get("/app/counter")[0] == 200

                def settled():
                    s = web.status()
                    return (s["RhythmBackupPending"] == 0 and
                            s["RhythmBackupOldestUnacknowledgedMs"] == 0 and
                            s["RhythmBackupAcknowledged"] == s["RhythmBackupPublished"] > 0)
                wait_for(settled, 15, f"every change acknowledged (replicas {replicas})")
                for b in browsers:
                    key = b.session_key()
                    assert len(holders(nodes, key)) == replicas
                # Each node's own view catches up at its next heartbeat.
                wait_for(lambda: all(web.status()[f"RhythmBackupNode{i}Unacknowledged"] == 0
                                     for i in (1, 2, 3)), 5, "no node behind")


def test_a_failover_fetch_asks_the_sessions_owner_first():
    with bank(["node-a", "node-b", "node-c"], 1) as nodes:
        with backed_server("web1", nodes) as web1, backed_server("web2", nodes) as web2:
            b = Browser(web1)
            b.get("/app/counter")
            key = b.session_key()
            wait_for(lambda: len(holders(nodes, key)) == 1, 10, "the session in the bank")
            wait_for(lambda: web2.status()["RhythmBackupNodesUp"] == 3, 10, "web2's agent")
            # holders() asked every node once; what web2 asks comes on top.
            before = {n.name: n.status()["fetches"] for n in nodes}
            b.server = web2
            assert "count=2" in b.get("/app/counter")[2]
            asked = {n.name: n.status()["fetches"] - before[n.name] for n in nodes}
            owner = holders(nodes, key).pop()
            assert asked == {n.name: 1 if n.name == owner else 0 for n in nodes}


def test_a_restarted_server_takes_no_former_owners_copy_that_missed_changes():
    """node-c joins and takes shards from node-a, which keeps its copies 10 s for node-c's
    snapshots but gets no more changes of them. web1 counts on (node-c has the changes). web2
    starts while node-c is stopped: it cannot reach node-c, and node-a answers from its old copy.
    web2 waits for node-c and serves the latest count, not the old copy (the fault campaign, seed
    14: a count went back from 372 to 261)."""
    a = RssNode(name="node-a", extra=["--replicas", "1"])
    c = RssNode(name="node-c", extra=["--replicas", "1"])
    a.peers, c.peers = [c.queries], [a.queries]
    try:
        a.start()
        wait_for(lambda: a.status()["ownership_decided"], 10, "node-a's ownership")
        with backed_server("web1", [a, c]) as web1:
            browsers = [Browser(web1) for _ in range(20)]
            for br in browsers:
                assert br.get("/app/counter")[0] == 200
            wait_backed(web1)
            c.start()
            wait_members([a, c], {"node-a", "node-c"})
            moved = [br for br in browsers if rf.shard_of(br.session_key()) in owned(c)]
            assert moved, "no session in node-c's shards"
            br = moved[0]
            key = br.session_key()
            wait_for(lambda: c.fetch(key).get("status") == rf.FOUND, 10, "node-c filled")
            for _ in range(2):
                assert "count=" in br.get("/app/counter")[2]
            wait_backed(web1)
            latest = c.fetch(key)
            old = a.fetch(key)
            assert latest["owner"] and latest["status"] == rf.FOUND
            assert not old["owner"] and old["status"] == rf.FOUND  # kept for the snapshot
            assert old["version"] < latest["version"]
            os.kill(c.pid, signal.SIGSTOP)
            stopped = time.monotonic()
            answer = {}
            try:
                with backed_server("web2", [a, c], "SessionBackupTimeout 5s") as web2:
                    wait_for(lambda: web2.status()["RhythmBackupNodesUp"] >= 1, 5, "node-a up")
                    before = a.status()["fetches"]
                    br.server = web2
                    request = threading.Thread(
                        target=lambda: answer.update(zip(("status", "text"),
                                                         br.get("/app/counter")[::2])))
                    request.start()
                    wait_for(lambda: a.status()["fetches"] > before, 5, "node-a asked")
                    # node-a's copy must not be served while node-c cannot answer.
                    time.sleep(0.2)
                    assert not answer, answer
                    # Well before node-a would count node-c down and take the shard back.
                    assert time.monotonic() - stopped < NOTICE_S - 1, "web2 started too slowly"
                    os.kill(c.pid, signal.SIGCONT)
                    request.join(10)
                    assert answer.get("status") == 200, answer
                    assert "count=4" in answer["text"], answer["text"]
            finally:
                os.kill(c.pid, signal.SIGCONT)
    finally:
        a.cleanup()
        c.cleanup()


def wait_backed(web, what="every change acknowledged", timeout=10):
    """Until `web` has nothing left to publish and the bank has acknowledged what it published."""
    def backed():
        s = web.status()
        return s["RhythmBackupPending"] == 0 and s["RhythmBackupOldestUnacknowledgedMs"] == 0
    wait_for(backed, timeout, what)


def bank_versions(nodes, key):
    """{node name: version} of the nodes that hold the session. A node still being filled with
    the session's shard answers provisionally: what it holds is not its copy yet."""
    out = {}
    for n in nodes:
        reply = n.fetch(key)
        if reply.get("provisional"):
            continue
        if reply["status"] == rf.FOUND:
            out[n.name] = reply["version"]
    return out


def test_a_killed_node_under_load_loses_nothing_and_its_return_moves_no_version_back():
    """Three nodes with --replicas 2 and a web server under load: kill -9 one node; no request
    fails, every session stays available (another server takes it over), every session is back
    on two live nodes within 30 s; the node restarts empty, is refilled, takes its shards back,
    and no version anywhere is below one the bank held before."""
    with bank(["node-a", "node-b", "node-c"], 2) as nodes:
        a, b, c = nodes
        web1, web2 = (backed_server(name, nodes) for name in ("web1", "web2"))
        with web1, web2:
            browsers = [Browser(web1) for _ in range(100)]
            for br in browsers:
                assert br.get("/app/counter")[0] == 200
            failures, stop = [], threading.Event()

            def load():
                i = 0
                while not stop.is_set():
                    try:
                        status = browsers[i % len(browsers)].get("/app/counter")[0]
                        if status != 200:
                            failures.append(status)
                    except OSError as e:
                        failures.append(repr(e))
                    i += 1
            worker = threading.Thread(target=load)
            worker.start()
            try:
                time.sleep(1)  # load before the kill (the assertions below poll with deadlines)
                c.kill()
                killed = time.monotonic()
                # Available all along: each session is on two nodes, one of them alive.
                for br in browsers[:20]:
                    assert bank_versions([a, b], br.session_key()), "a session unavailable"
                wait_members([a, b], {"node-a", "node-b"}, timeout=NOTICE_S + NOTICE_MARGIN_S)
                wait_for(lambda: all(len(bank_versions([a, b], br.session_key())) == 2
                                     for br in browsers),
                         30 - (time.monotonic() - killed), "every session on two live nodes")
                print(f"two live copies of {len(browsers)} sessions "
                      f"{time.monotonic() - killed:.1f} s after the kill")
            finally:
                stop.set()
                worker.join()
            assert failures == []
            # The highest version the bank holds of each session, now that the load stopped.
            wait_backed(web1)
            held = {br.session_key(): max(bank_versions([a, b], br.session_key()).values())
                    for br in browsers}
            c.start()  # empty
            wait_members(nodes, {"node-a", "node-b", "node-c"})
            wait_for(lambda: c.status()["shards_short"] == 0 and c.status()["sessions"] > 0, 30,
                     "node-c refilled")
            # It asked for all its shards itself: the agent's repair of what it missed while it
            # was down (RS0319) does not publish them a second time.
            assert "RS0319" not in web1.log_text()
            # Every copy at the version held before (none older); the shards node-c took back are
            # dropped by the node that held them meanwhile after its 10 s linger.
            for key, version in held.items():
                versions = bank_versions(nodes, key)
                assert versions and min(versions.values()) == version, (key, versions)
            wait_for(lambda: all(len(bank_versions(nodes, key)) == 2 for key in held), 20,
                     "every session on exactly two nodes again")
            # node-c vouches for what it copied from its peers once its first 3 s are over.
            wait_for(lambda: any(bank_versions([c], key) for key in held), 5,
                     "node-c answering as an owner")
            # Another server takes over a session and continues from the last count.
            br = browsers[0]
            last = int(br.get("/app/show")[2].split("count=")[1].split("&")[0].strip())
            br.server = web2
            assert f"count={last + 1}" in br.get("/app/counter")[2]


def test_a_hung_node_holds_no_fetch_and_serves_nothing_stale_when_it_resumes():
    """SIGSTOP one of three nodes (--replicas 2) for 20 s while users move to another web server:
    every failover fetch is answered within SessionBackupTimeout and continues from the last
    count once node-a and node-b have taken node-c's shards over (NOTICE_S); before that, a
    session it owns is a 503 (a hung owner is waited for until web2 counts it silent, 1.5 s;
    then it is an owner out lately, which may have seen what the others did not:
    docs/backup.md) and the next request goes on.
    After SIGCONT the node catches up, and a third server taking each session over gets its
    latest count."""
    with bank(["node-a", "node-b", "node-c"], 2) as nodes:
        a, b, c = nodes
        web1, web2, web3 = (backed_server(name, nodes, "SessionBackupTimeout 500ms")
                            for name in ("web1", "web2", "web3"))
        with web1, web2, web3:
            browsers = [Browser(web1) for _ in range(30)]
            for br in browsers:
                for _ in range(3):
                    assert br.get("/app/counter")[0] == 200
            wait_backed(web1)
            os.kill(c.pid, signal.SIGSTOP)
            try:
                stopped = time.monotonic()
                slowest = 0.0
                unavailable = []  # when a move was answered 503, since the stop
                for i, br in enumerate(browsers):
                    # Spread the moves over the 20 s: before and after the bank notices.
                    wait_for(lambda: time.monotonic() - stopped >= i * 0.6, 30, "the next move",
                             interval=0.05)
                    br.server = web2
                    while True:
                        started = time.monotonic()
                        status, _, text = br.get("/app/counter")
                        slowest = max(slowest, time.monotonic() - started)
                        if status != 503:
                            break
                        unavailable.append(started - stopped)
                    assert (status, "count=4" in text) == (200, True), text
                    assert br.get("/app/counter")[0] == 200  # count 5, on web2
                wait_for(lambda: time.monotonic() - stopped >= 20, 30, "20 s stopped",
                         interval=0.2)
            finally:
                os.kill(c.pid, signal.SIGCONT)
            print(f"slowest failover request while node-c was stopped: {slowest * 1000:.0f} ms; "
                  f"503s at {['%.2f s' % t for t in unavailable]} after the stop")
            assert slowest < 0.5 + 0.3  # SessionBackupTimeout, and the page itself
            assert all(t < NOTICE_S + NOTICE_MARGIN_S for t in unavailable), unavailable
            wait_members(nodes, {"node-a", "node-b", "node-c"})
            wait_backed(web2, "web2's changes acknowledged")
            # node-c caught up: whatever it holds is the latest version.
            for br in browsers:
                key = br.session_key()
                wait_for(lambda: len(set(bank_versions(nodes, key).values())) == 1, 15,
                         "every copy at one version")
            for br in browsers:
                br.server = web3
                status, _, text = br.get("/app/counter")
                assert (status, "count=6" in text) == (200, True), text


def test_a_node_hung_while_the_agent_restarts_gets_what_it_missed_when_it_resumes():
    """node-c is SIGSTOPped, then web1's backup agent is killed: the new agent (a new epoch)
    cannot reach node-c, so what it publishes goes to node-a and node-b alone and is settled by
    them. When node-c resumes it must not count the new epoch from its start (it missed that):
    the agent publishes node-c's shards again, node-c acknowledges what follows, and every copy
    ends at the latest version."""
    with bank(["node-a", "node-b", "node-c"], 2) as nodes:
        a, b, c = nodes
        web1 = backed_server("web1", nodes)
        with web1:
            browsers = [Browser(web1) for _ in range(40)]
            for br in browsers:
                assert br.get("/app/counter")[0] == 200
            wait_backed(web1)
            os.kill(c.pid, signal.SIGSTOP)
            try:
                first = web1.status()["RhythmBackupAgentPid"]
                os.kill(first, signal.SIGKILL)
                wait_for(lambda: web1.status()["RhythmBackupAgentPid"] not in (0, first), 10,
                         "the agent restarted")
                # Each session is checked once by the new agent (RS0331): a request before it
                # reached a node waits for one until its deadline (CI under ASan on 7cb333b
                # answered a 503 here once; this is the likely cause, not traced).
                wait_for(lambda: web1.status()["RhythmBackupNodesUp"] == 2, 10,
                         "the new agent to reach node-a and node-b")
                for br in browsers:
                    assert br.get("/app/counter")[0] == 200  # count 2, node-c away
                wait_backed(web1, "count 2 acknowledged by node-a and node-b")
            finally:
                os.kill(c.pid, signal.SIGCONT)
            wait_members(nodes, {"node-a", "node-b", "node-c"})
            wait_for(lambda: "RS0319" in web1.log_text(), 10, "node-c's shards published again")
            for br in browsers:
                assert "count=3" in br.get("/app/counter")[2]
            wait_backed(web1, "count 3 acknowledged, node-c included")
            held_by_c = 0
            for br in browsers:
                key = br.session_key()
                versions = wait_for(lambda: len(set(bank_versions(nodes, key).values())) == 1 and
                                    bank_versions(nodes, key), 10, "every copy at one version")
                held_by_c += "node-c" in versions
            assert held_by_c > 0


def not_503(answer):
    """(status, text) of a response other than 503, else None (for wait_for)."""
    status, _, text = answer
    return None if status == 503 else (status, text)


def test_a_web_server_and_a_node_killed_together_lose_no_acknowledged_change():
    with bank(["node-a", "node-b", "node-c"], 2) as nodes:
        a, b, c = nodes
        web1, web2 = (backed_server(name, nodes) for name in ("web1", "web2"))
        with web1, web2:
            browsers = [Browser(web1) for _ in range(100)]
            for i, br in enumerate(browsers):
                for _ in range(1 + i % 4):
                    assert br.get("/app/counter")[0] == 200
            wait_backed(web1)
            web1.kill()
            c.kill()
            wait_members([a, b], {"node-a", "node-b"}, timeout=NOTICE_S + NOTICE_MARGIN_S)
            started = time.monotonic()
            for i, br in enumerate(browsers):
                br.server = web2
                # A 503 until web2 hears from node-a and node-b that they took node-c's shards
                # (their next heartbeat-acks): until then a take-over does not settle for a copy
                # no owner vouches for (web1 is silent to them) while an owner went out lately.
                status, text = wait_for(lambda: not_503(br.get("/app/counter")), 10,
                                        "a take-over answered")
                assert (status, f"count={2 + i % 4}" in text) == (200, True), text
            took = time.monotonic() - started
            print(f"100 take-overs after the kills: {took:.2f} s")
            assert took < 10


def test_with_one_replica_the_web_servers_refill_a_dead_nodes_shards():
    """--replicas 1: each session on exactly one node; when a node dies, its shards' new owners
    ask the web servers, which publish those sessions again."""
    with bank(["node-a", "node-b", "node-c"], 1) as nodes:
        a, b, c = nodes
        web1 = backed_server("web1", nodes)
        with web1:
            browsers = [Browser(web1) for _ in range(150)]
            for br in browsers:
                assert br.get("/app/counter")[0] == 200
            wait_backed(web1)
            keys = [br.session_key() for br in browsers]
            assert all(len(bank_versions(nodes, key)) == 1 for key in keys)
            on_c = [key for key in keys if bank_versions([c], key)]
            assert on_c  # a third of them, about
            c.kill()
            wait_members([a, b], {"node-a", "node-b"}, timeout=NOTICE_S + NOTICE_MARGIN_S)
            # No snapshot source is left for node-c's shards: the web server sends them again.
            wait_for(lambda: all(len(bank_versions([a, b], key)) == 1 for key in on_c), 30,
                     "node-c's sessions on their new owners")
            assert all(len(bank_versions([a, b], key)) == 1 for key in keys)


class MutePeer:
    """A fake node for a bank: answers pings under `name` (so it is a live member) and takes
    snapshot requests without ever answering them, or stays silent altogether once muted."""

    def __init__(self, name):
        self.name = name.encode()
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.queries = f"tcp://127.0.0.1:{self.router.bind_to_random_port('tcp://127.0.0.1')}"
        self.snapshot_requests = 0
        self.answering = True
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            if not self.router.poll(20):
                continue
            identity, msg_header, body = (self.router.recv_multipart() + [b"", b""])[:3]
            if not self.answering:
                continue
            if msg_header[1:2] == bytes([rf.PING]):
                (rid,) = struct.unpack(">Q", body[:8])
                pong = struct.pack(">QB", rid, len(self.name)) + self.name
                self.router.send_multipart([identity, rf.header(rf.PONG), pong])
            elif msg_header[1:2] == bytes([rf.SNAPSHOT_REQUEST]):
                self.snapshot_requests += 1

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.context.destroy(0)


def test_a_node_that_counts_every_peer_down_does_not_vouch_for_its_copies():
    """A node whose peers are all silent to it may be the one cut off: once the cut heals, a web
    server can reach it before its peers do, while they took its shards and every change since.
    Its answers are provisional then (the web server asks the rest of the bank too and takes the
    highest version), and vouch again once a peer answers. Before, it vouched as the owner of
    every shard (the fault campaign, s90k: a copy 63 changes old served)."""
    with bank(["node-a", "node-b"], 2) as (a, b):
        key = rf.new_key()
        wait_for(lambda: not a.fetch(key)["provisional"], 5, "node-a past its first seconds")
        reply = a.fetch(key)
        assert reply["owner"] and not reply["provisional"], reply
        b.stop()
        wait_for(lambda: member_states(a.status()).get("node-b") == "down",
                 NOTICE_S + NOTICE_MARGIN_S + 1, "node-a to count node-b down")
        reply = a.fetch(key)
        assert reply["owner"] and reply["provisional"], reply
        b.start()
        wait_members([a, b], {"node-a", "node-b"})
        reply = a.fetch(key)
        assert reply["owner"] and not reply["provisional"], reply


@contextlib.contextmanager
def servers_of_a_session(node, names):
    """A session web-a made on `node` (version 5), and a queries connection for each of `names`
    ({name: Requester}; "web-a#2" is web-a's next agent, after a restart); heartbeat(name, epoch)
    has that agent say who it is."""
    key = rf.new_key()
    pub = node.publisher(agent_id=b"A" * 16, origin="web-a")
    agents = {name: rf.Requester(node.context, node.queries) for name in names}

    def heartbeat(name, epoch=1):
        next_sequence = pub.sequence + 1 if (name, epoch) == ("web-a", 1) else 1
        ack = agents[name].ask(lambda rid: rf.heartbeat_frames(
            rid, name[4].upper().encode() * 16, epoch, next_sequence,
            server_name=name.split("#")[0]))
        assert ack["type"] == rf.HEARTBEAT_ACK, ack

    try:
        pub.wait_subscribed()
        pub.publish(key, 5, b"x")
        wait_for(lambda: node.fetch(key)["status"] == rf.FOUND, 5, "the session stored")
        yield key, agents, heartbeat
    finally:
        pub.close()
        for r in agents.values():
            r.close()


def test_a_node_does_not_vouch_for_a_copy_while_the_server_that_took_it_over_is_silent():
    """web-b took a session over from the node's copy, which web-a made, then fell silent to the
    node (under packet loss, or hung): it may have changed the session since, and those changes
    may have reached another owner. So the node answers web-c's fetch provisionally (web-c asks
    the rest of the bank too), though web-a, the copy's maker, is in touch. Before, it checked
    only the copy's maker and vouched."""
    with RssNode("node-a", extra=["--handover-wait", "0"]) as node, \
            servers_of_a_session(node, ("web-a", "web-b", "web-c")) as (key, agents, heartbeat):
        for name in agents:
            heartbeat(name)
        taken = agents["web-b"].fetch(key)
        assert (taken["owner"], taken["provisional"], taken["version"]) == (True, False, 5)
        silent_since = time.monotonic()
        while time.monotonic() - silent_since < 2:  # web-a and web-c in touch, web-b not
            heartbeat("web-a")
            heartbeat("web-c")
            time.sleep(0.2)
        reply = agents["web-c"].fetch(key)
        assert reply["owner"] and reply["provisional"], reply


def test_a_node_does_not_vouch_for_a_copy_whose_maker_left_its_handover_unanswered():
    """s108-80all (the fault campaign, every fault type, under packet loss): node-2 heard web-3's
    heartbeats, but its handover requests did not reach web-3 (the loss one way); after 1.5 s
    without an answer it gave web-3 up for that session and vouched for its copy, which web-2,
    which had counted the other owner down, took: 15 changes behind web-3's, which the other
    owner held. The node still answers from its copy once it gives up, but provisionally: the
    web server asks the rest of the bank too, and answers 503 while an owner it could not reach
    was out lately."""
    with RssNode("node-a") as node, \
            servers_of_a_session(node, ("web-a", "web-b")) as (key, agents, heartbeat):
        wait_for(lambda: not node.fetch(key)["provisional"], 5, "vouched once 3 s old")
        heartbeat("web-a")
        heartbeat("web-b")
        agents["web-b"].send_raw(rf.fetch_frames(99, key))
        asked = wait_for(lambda: [m for m in [agents["web-a"].receive()]
                                  if m["type"] == rf.HANDOVER], 5, "web-a asked")
        assert asked[0]["key"] == key, asked  # and never answered
        unanswered_since = time.monotonic()
        while time.monotonic() - unanswered_since < 2:  # web-a in touch all the while
            heartbeat("web-a")
            heartbeat("web-b")
            time.sleep(0.2)
        reply = agents["web-b"].fetch(key)
        assert (reply["status"], reply["version"]) == (rf.FOUND, 5), reply
        assert reply["owner"] and reply["provisional"], reply


def fetch_answering_handovers(asker, key, agents, newer):
    """asker fetches key; each of agents ({name: Requester}) the node asks for a handover answers
    with newer[name] ((version, data): a newer copy) or nothing newer. Returns the fetch's final
    answer (not the interim "asking") and the names of the agents asked."""
    asker.send_raw(rf.fetch_frames(99, key))
    asked = set()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        for name, agent in agents.items():
            while agent.socket.poll(0):
                message = rf.decode_reply(agent.socket.recv_multipart())
                if message["type"] != rf.HANDOVER:
                    continue
                assert (message["key"], name not in asked) == (key, True), (name, message)
                asked.add(name)
                version, data = newer.get(name, (None, b""))
                agent.send_raw(rf.handover_reply_frames(
                    message["request_id"], key if version else None, version,
                    origin=name.split("#")[0], data=data))
        if asker.socket.poll(10):
            reply = rf.decode_reply(asker.socket.recv_multipart())
            if reply["type"] == rf.FETCH_REPLY and reply["request_id"] == 99 and \
                    not reply["asking"]:
                return reply, asked
    raise TimeoutError(f"no answer to the fetch (handovers asked of {sorted(asked)})")


def test_a_fetch_asks_both_the_server_that_took_a_session_over_and_the_one_that_made_it():
    """s104-97 (the fault campaign, under packet loss): web-b took a session over from the
    node's copy, which web-a made, without web-a being asked (it was not in touch then), and
    web-a, not told, went on with it. A fetch by web-c then made the node ask web-b alone, the
    last to take the session over, which had nothing newer: web-c got the node's copy, without
    web-a's change. The node now asks both, and answers with web-a's newer copy."""
    with RssNode("node-a") as node, \
            servers_of_a_session(node, ("web-a", "web-b", "web-c")) as (key, agents, heartbeat):
        # Past the node's first 3 s, in which it cannot vouch for another server's copy.
        wait_for(lambda: not node.fetch(key)["provisional"], 5, "vouched once 3 s old")
        heartbeat("web-b")
        taken = agents["web-b"].fetch(key)  # web-a not in touch: not asked
        assert (taken["version"], taken["asking"]) == (5, False), taken
        heartbeat("web-a")
        heartbeat("web-c")
        reply, asked = fetch_answering_handovers(
            agents["web-c"], key, {n: agents[n] for n in ("web-a", "web-b")},
            {"web-a": (6, b"y")})
        assert asked == {"web-a", "web-b"}, f"handovers asked of {sorted(asked)}"
        assert (reply["status"], reply["version"], reply["data"]) == (rf.FOUND, 6, b"y"), reply


def final_fetch_answer(agent, request_id):
    """The answer to fetch `request_id`, past the interim "asking" ones."""
    while True:
        reply = agent.receive()
        if reply["type"] == rf.FETCH_REPLY and reply["request_id"] == request_id and \
                not reply["asking"]:
            return reply


def taken_over_together(key, agents):
    """web-b's and web-c's fetches of a session web-a made wait for web-a's answer to one
    handover (nothing newer), and both are answered version 5."""
    agents["web-b"].send_raw(rf.fetch_frames(97, key))
    handover = wait_for(lambda: [m for m in [agents["web-a"].receive()]
                                 if m["type"] == rf.HANDOVER], 5, "web-a asked")[0]
    agents["web-c"].send_raw(rf.fetch_frames(98, key))
    interim = wait_for(lambda: [m for m in [agents["web-c"].receive()]
                                if m["type"] == rf.FETCH_REPLY], 5, "web-c answered")[0]
    assert (interim["request_id"], interim["asking"]) == (98, True), interim  # it waits too
    agents["web-a"].send_raw(rf.handover_reply_frames(handover["request_id"]))
    for asker, request_id in (("web-b", 97), ("web-c", 98)):
        reply = final_fetch_answer(agents[asker], request_id)
        assert (reply["status"], reply["version"]) == (rf.FOUND, 5), reply


def test_a_fetch_asks_each_of_the_last_two_servers_that_took_a_session_over():
    """s109-80all-b (the fault campaign, every fault type, as packet loss healed): web-b and
    web-c fetched a session web-a made within a millisecond; both waited for web-a's answer to
    one handover, and both were answered the node's copy. web-b took the session over (web-c's
    take-over ended in a 503 elsewhere) and changed it; the node remembered web-c alone as the
    last taker, so web-a, checking its copy, made it ask web-c, which had nothing newer, and the
    node vouched for its copy: web-a served on beside web-b's change. The node now remembers the
    last two servers answered a version, and asks both."""
    with RssNode("node-a") as node, \
            servers_of_a_session(node, ("web-a", "web-b", "web-c")) as (key, agents, heartbeat):
        wait_for(lambda: not node.fetch(key)["provisional"], 5, "vouched once 3 s old")
        for name in ("web-a", "web-b", "web-c"):
            heartbeat(name)
        taken_over_together(key, agents)
        # web-b has changed the session since; web-a checks its copy.
        reply, asked = fetch_answering_handovers(
            agents["web-a"], key, {n: agents[n] for n in ("web-b", "web-c")},
            {"web-b": (6, b"y")})
        assert asked == {"web-b", "web-c"}, f"handovers asked of {sorted(asked)}"
        assert (reply["status"], reply["version"], reply["data"]) == (rf.FOUND, 6, b"y"), reply


def test_a_node_does_not_vouch_while_any_of_three_servers_with_a_newer_copy_is_silent():
    """With the last two takers and the maker, three servers may hold a newer copy: the maker,
    third of them, falls silent to the node (under packet loss, or hung) after two servers took
    the session over, and web-d's fetch is answered provisionally, not vouched."""
    with RssNode("node-a") as node, servers_of_a_session(
            node, ("web-a", "web-b", "web-c", "web-d")) as (key, agents, heartbeat):
        wait_for(lambda: not node.fetch(key)["provisional"], 5, "vouched once 3 s old")
        for name in agents:
            heartbeat(name)
        taken_over_together(key, agents)
        silent_since = time.monotonic()
        while time.monotonic() - silent_since < 2:  # web-b, web-c and web-d in touch, web-a not
            for name in ("web-b", "web-c", "web-d"):
                heartbeat(name)
            time.sleep(0.2)
        reply, asked = fetch_answering_handovers(
            agents["web-d"], key, {n: agents[n] for n in ("web-b", "web-c")}, {})
        assert asked == {"web-b", "web-c"}, f"handovers asked of {sorted(asked)}"
        assert (reply["version"], reply["owner"], reply["provisional"]) == (5, True, True), reply


def test_a_servers_next_agent_is_asked_for_a_handover_its_last_one_answered():
    """s106-97 (the fault campaign, under packet loss): web-1's agent answered node-2's
    handover of a session (nothing newer: it gave the session up), then web-1 restarted
    gracefully; its next agent, not connected to node-2 yet, checked the session with node-3
    alone and web-1 served it on, 18 changes. node-2, counting web-1 as having given the session
    up at that version, answered a misroute to web-2 from its copy without asking web-1 again.
    What one agent answered now holds for that agent only: the next one is asked."""
    names = ("web-a", "web-a#2", "web-b", "web-c")
    with RssNode("node-a") as node, \
            servers_of_a_session(node, names) as (key, agents, heartbeat):
        wait_for(lambda: not node.fetch(key)["provisional"], 5, "vouched once 3 s old")
        for name in ("web-a", "web-b", "web-c"):
            heartbeat(name)
        reply, asked = fetch_answering_handovers(agents["web-b"], key,
                                                 {"web-a": agents["web-a"]}, {})
        assert (asked, reply["version"]) == ({"web-a"}, 5), (asked, reply)
        # web-a restarts: its next agent (same agent id, next epoch) on a connection of its own,
        # with the change web-a made since.
        heartbeat("web-a#2", epoch=2)
        reply, asked = fetch_answering_handovers(
            agents["web-c"], key, {n: agents[n] for n in ("web-a", "web-a#2", "web-b")},
            {"web-a#2": (6, b"y")})
        assert "web-a#2" in asked and "web-a" not in asked, f"asked {sorted(asked)}"
        assert (reply["status"], reply["version"], reply["data"]) == (rf.FOUND, 6, b"y"), reply


def test_a_node_just_started_does_not_vouch_that_it_lacks_a_session():
    """In its first 3 s a node's "not found" is provisional: its first snapshot may have come
    from a peer that lacked the session too, and the copies a peer held for it while it was
    counted down (a catch-up offer) and the web servers' re-sends come a moment later. Before, it
    vouched, and a misroute was answered from a former owner's older copy (the fault campaign,
    s103-90: node-2, 170 ms old)."""
    with RssNode("node-a") as node:
        key = rf.new_key()
        reply = node.fetch(key)
        assert reply["status"] == rf.NOT_FOUND and reply["owner"] and reply["provisional"], reply
        wait_for(lambda: not node.fetch(key)["provisional"], 5, "vouched once 3 s old")


def test_a_node_still_filling_a_shard_says_so_in_its_answers():
    """A node takes over shards whose snapshot never comes (its source takes the request and
    sends nothing): until it gives the fill up, its answer to a fetch is provisional (what
    it holds is not its copy yet), so the web server asks the rest of the bank too."""
    x, y = MutePeer("node-x"), MutePeer("node-y")
    node = RssNode(name="node-d", peers=[x.queries, y.queries], extra=["--replicas", "2"])
    try:
        node.start()
        wait_members([node], {"node-d", "node-x", "node-y"})
        before = owned(node)
        y.answering = False  # node-y dies: node-d takes over some of its shards, from node-x
        wait_for(lambda: len(owned(node)) == rf.SHARD_COUNT, NOTICE_S + NOTICE_MARGIN_S + 1,
                 "node-d to own every shard")
        wait_for(lambda: x.snapshot_requests > 0, 5, "a snapshot asked of node-x")
        gained = sorted(set(range(rf.SHARD_COUNT)) - before)
        key = rf.key_in_shard(gained[0])
        reply = node.fetch(key)
        assert reply["type"] == rf.FETCH_REPLY and reply["status"] == rf.NOT_FOUND, reply
        assert reply["owner"] and reply["provisional"], reply
        # The fill is given up after 10 s without a record (the agents are asked to re-send):
        # from then on the node answers for the shard as its owner.
        wait_for(lambda: not node.fetch(key)["provisional"], 15, "vouched for once given up")
        assert node.fetch(key)["owner"]
        assert "given up" in node.log_text()
    finally:
        node.cleanup()
        x.close()
        y.close()
