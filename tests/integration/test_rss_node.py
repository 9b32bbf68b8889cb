"""rss_node against real processes and real ZeroMQ sockets on 127.0.0.1: updates published on
shard topics and fetched back, versions, tombstones, expiry, restart, status, the operator
commands, configuration checks, the memory limit, and malformed traffic counted and dropped while
good clients keep being served."""

import json
import os
import random
import re
import signal
import threading

import pytest

import rss_node_fixture as rf
from rhythm_httpd import free_port, session_id_of, wait_for
from rss_node_fixture import RssNode, new_key, now_ms


@pytest.fixture
def node():
    n = RssNode()
    n.start()
    yield n
    n.cleanup()


def applied(node, count, timeout=10):
    node.wait_status(lambda s: s["updates_applied"] >= count, timeout,
                     f"{count} updates applied")


def test_published_updates_are_fetched_back(node):
    pub = node.publisher()
    pub.wait_subscribed()
    sessions = {new_key(): os.urandom(1024) for _ in range(200)}
    for key, data in sessions.items():
        pub.publish(key, 1, data)
    applied(node, len(sessions))
    shards = {rf.shard_of(k) for k in sessions}
    assert len(shards) > 100  # spread over many topics
    for key, data in sessions.items():
        reply = node.fetch(key)
        assert reply["type"] == rf.FETCH_REPLY
        assert reply["status"] == rf.FOUND
        assert reply["data"] == data
        assert reply["version"] == 1
        assert reply["origin"] == "web1"
    missing = node.fetch(new_key())
    assert missing["status"] == rf.NOT_FOUND
    status = node.status()
    assert status["sessions"] == 200
    assert status["payload_bytes"] == 200 * 1024
    assert status["bytes"] >= 200 * 1024
    pub.close()


def test_highest_version_wins_and_refusals_are_counted(node):
    pub = node.publisher()
    pub.wait_subscribed()
    key = new_key()
    pub.publish(key, 5, b"five")
    pub.publish(key, 3, b"three")
    pub.publish(key, 5, b"five again")
    pub.publish(key, 7, b"seven")
    node.wait_status(lambda s: s["updates_applied"] + s["updates_refused"] +
                     s["updates_duplicate"] >= 4, 10, "four updates handled")
    status = node.status()
    assert status["updates_applied"] == 2
    assert status["updates_refused"] == 1
    assert status["refused_stale"] == 1
    assert status["updates_duplicate"] == 1
    reply = node.fetch(key)
    assert (reply["version"], reply["data"]) == (7, b"seven")
    pub.close()


def test_tombstone_deletes_and_blocks_older_updates(node):
    pub = node.publisher()
    pub.wait_subscribed()
    key = new_key()
    pub.publish(key, 1, b"alive")
    pub.publish(key, 2, tombstone=True)
    applied(node, 2)
    reply = node.fetch(key)
    assert reply["status"] == rf.DELETED
    assert reply["tombstone"] and reply["version"] == 2 and reply["data"] == b""
    # A late or replayed update does not bring the session back.
    pub.publish(key, 1, b"alive")
    node.wait_status(lambda s: s["refused_stale"] == 1, 10, "the replay refused")
    assert node.fetch(key)["status"] == rf.DELETED
    status = node.status()
    assert status["sessions"] == 0 and status["tombstones"] == 1
    code, out, _ = node.run_cli("get", node.queries, session_id_of(key))
    assert code == 1
    assert "state: deleted" in out and "version: 2" in out
    pub.close()


def test_sessions_and_tombstones_expire(node):
    pub = node.publisher()
    pub.wait_subscribed()
    live, gone, dead = new_key(), new_key(), new_key()
    pub.publish(live, 1, b"stays")
    pub.publish(gone, 1, b"short", expires_at_ms=now_ms() + 300)
    pub.publish(dead, 4, tombstone=True, expires_at_ms=now_ms() + 300)
    applied(node, 3)
    wait_for(lambda: node.fetch(gone)["status"] == rf.NOT_FOUND, 5, "the session to expire")
    wait_for(lambda: node.fetch(dead)["status"] == rf.NOT_FOUND, 5, "the tombstone to expire")
    # The sweep frees them (every shard is swept about every 3.2 s).
    node.wait_status(lambda s: s["sessions_expired"] == 2 and s["sessions"] == 1 and
                     s["tombstones"] == 0, 10, "the sweep")
    # Once the tombstone has gone, the session may be created again.
    pub.publish(dead, 1, b"new")
    wait_for(lambda: node.fetch(dead)["status"] == rf.FOUND, 5, "the new session")
    # An update that expired before it arrived is not stored.
    pub.publish(new_key(), 1, b"late", expires_at_ms=now_ms() - 1000)
    node.wait_status(lambda s: s["expired_on_arrival"] == 1, 5, "the late update ignored")
    pub.close()


def test_restart_starts_empty_and_asks_agents_to_resend(node):
    pub = node.publisher(agent_id=b"R" * 16, epoch=9)
    pub.wait_subscribed()
    key = new_key()
    pub.publish(key, 1, b"before")
    applied(node, 1)
    mark = pub.mark()
    assert node.stop() == 0
    assert "stopping" in node.log_text()
    node.start()
    assert node.status()["sessions"] == 0
    assert node.fetch(key)["status"] == rf.NOT_FOUND
    # The agent's heartbeat: every shard owned, none held yet, and a whole-shard re-send.
    req = node.requester()
    ack = req.ask(lambda rid: rf.heartbeat_frames(rid, b"R" * 16, 9, pub.sequence + 1))
    assert ack["type"] == rf.HEARTBEAT_ACK
    assert ack["owned"] == set(range(rf.SHARD_COUNT)) and ack["shard_acks"] == {}
    assert ack["node_name"] == "node-a"
    assert ack["updates_endpoint"] == node.updates
    resend = req.receive()
    assert resend["type"] == rf.RESEND
    assert resend["from_sequence"] == 0
    assert resend["shards"] == set(range(rf.SHARD_COUNT))
    # The publisher reconnects by itself; the re-sent session lands. The node met this agent in
    # the middle of its epoch: it counts the shard from the head the next heartbeat gives.
    shard = rf.shard_of(key)
    head = pub.shard_sequences[shard]
    pub.wait_subscribed(after=mark)
    pub.publish(key, 1, b"before")
    wait_for(lambda: node.fetch(key)["status"] == rf.FOUND, 10, "the re-sent session")
    ack = req.ask(lambda rid: rf.heartbeat_frames(rid, b"R" * 16, 9, pub.sequence + 1))
    assert ack["shard_acks"] == {}
    ack = req.ask(lambda rid: rf.heartbeat_frames(rid, b"R" * 16, 9, pub.sequence + 1,
                                                  heads={shard: head}))
    assert ack["shard_acks"] == {shard: head + 1}
    pub.close()


def test_heartbeat_acks_contiguous_shard_sequences_and_tells_of_newer_versions(node):
    web1 = node.publisher(agent_id=b"1" * 16, origin="web1")
    web2 = node.publisher(agent_id=b"2" * 16, origin="web2")
    web1.wait_subscribed()
    web2.wait_subscribed()
    # web1's agent has a connection of its own: the node's status requests (wait_status) go on
    # the fixture's, and would take a refusal that arrives meanwhile for theirs.
    req = rf.Requester(node.context, node.queries, node.curve)
    ack = req.ask(lambda rid: rf.heartbeat_frames(rid, b"1" * 16, 1, 1))
    assert ack["shard_acks"] == {}
    assert req.receive()["type"] == rf.RESEND
    key = rf.key_in_shard(7)
    web2.publish(key, 10, b"made on web2")
    # web1's stream: shard 7 gets shard sequences 1, 3 (2 is lost) and 4; shard 8 gets 1.
    web1.publish(rf.key_in_shard(7), 1, b"x", sequence=1, shard_sequence=1)
    web1.publish(rf.key_in_shard(8), 1, b"x", sequence=2, shard_sequence=1)
    web1.publish(rf.key_in_shard(7), 1, b"x", sequence=4, shard_sequence=3)
    applied(node, 4)
    web1.publish(key, 9, b"stale on web1", sequence=5, shard_sequence=4)
    node.wait_status(lambda s: s["refused_stale"] == 1, 10, "the stale update refused")
    # Told at once, not after its next heartbeat: it must drop its copy before the session
    # comes back to it.
    refused = req.receive()
    assert refused["type"] == rf.REFUSED
    assert refused["refusals"] == [(key, 10)]
    ack = req.ask(lambda rid: rf.heartbeat_frames(rid, b"1" * 16, 1, 6))
    assert ack["shard_acks"] == {7: 1, 8: 1}
    # The re-send fills the gap; only the shard that moved is in the next acknowledgement.
    web1.publish(rf.key_in_shard(7), 1, b"x", sequence=3, shard_sequence=2)
    applied(node, 5)
    ack = req.ask(lambda rid: rf.heartbeat_frames(rid, b"1" * 16, 1, 6))
    assert ack["shard_acks"] == {7: 4}
    req.close()
    web1.close()
    web2.close()


def test_snapshot_streams_the_requested_shards(node):
    pub = node.publisher()
    pub.wait_subscribed()
    keys = [new_key() for _ in range(300)]
    for k in keys:
        pub.publish(k, 3, b"s" * 100)
    applied(node, len(keys))
    wanted = {rf.shard_of(k) for k in keys[:50]}
    req = node.requester()
    req.send_raw(rf.snapshot_request_frames(77, wanted))
    got = []
    while True:
        reply = req.receive()
        assert reply["request_id"] == 77
        if reply["type"] == rf.SNAPSHOT_END:
            break
        assert reply["type"] == rf.SNAPSHOT_RECORD
        got.append(reply["key"])
    assert reply["records"] == len(got)
    assert sorted(got) == sorted(k for k in keys if rf.shard_of(k) in wanted)
    pub.close()


def test_status_and_get_commands(node):
    pub = node.publisher()
    pub.wait_subscribed()
    key = new_key()
    pub.publish(key, 12, b"counter=41")
    applied(node, 1)
    code, out, err = node.run_cli("status", node.queries)
    assert code == 0, err
    status = json.loads(out)
    for field in ("sessions", "bytes", "shards_subscribed", "updates_applied", "updates_refused",
                  "malformed_frames", "peers", "uptime_seconds"):
        assert field in status
    assert status["sessions"] == 1 and status["shards_subscribed"] == 1024
    assert status["name"] == "node-a"
    code, out, err = node.run_cli("get", node.queries, session_id_of(key))
    assert code == 0, err
    assert "state: found" in out and "version: 12" in out and "origin: web1" in out
    assert out.rstrip().endswith("counter=41")
    # In its first 3 s a node has not heard from every web server (web1 never heartbeats here):
    # it cannot vouch that none holds a newer copy. Then it does.
    assert "owner: provisional" in out
    wait_for(lambda: "owner: yes" in node.run_cli("get", node.queries, session_id_of(key))[1],
             5, "the node's first 3 s over")
    code, out, _ = node.run_cli("get", node.queries, session_id_of(new_key()))
    assert code == 1 and "state: not-found" in out
    code, _, err = node.run_cli("get", node.queries, "not-a-session-id")
    assert code == 2 and "is not a session ID" in err
    code, _, err = node.run_cli("status", "localhost:5557")
    assert code == 2 and "'localhost:5557' is not an endpoint" in err
    # No node there: a bounded wait, then an error.
    code, _, err = node.run_cli("status", f"tcp://127.0.0.1:{free_port()}")
    assert code == 2 and "no answer" in err
    pub.close()


def test_malformed_traffic_is_counted_and_good_clients_keep_being_served(node):
    pub = node.publisher()
    pub.wait_subscribed()
    key = new_key()
    pub.publish(key, 1, b"good")
    applied(node, 1)
    garbage_pub = node.publisher(agent_id=b"G" * 16)
    garbage_pub.wait_subscribed()
    newer, older = rf.PROTOCOL_VERSION + 1, rf.PROTOCOL_VERSION - 1
    bad_published = [
        [rf.topic(5) + rf.header(rf.UPDATE) + b"short"],               # truncated body
        [rf.topic(5) + rf.header(rf.UPDATE, newer) + b"x" * 100],      # another version
        [rf.topic(5), rf.header(rf.UPDATE, older), b"x" * 100],        # version 2's 3 frames
        [rf.topic(5) + rf.header(0x63)],                               # unknown type
        [rf.topic(5) + b"\x01"],                                       # half a header
        rf.published_frames(key, 2, b"x") + [b"\x00"] * 2,             # 3 frames
        rf.published_frames(key, 2, b"x") + [b"\x00"] * 4,             # 5 frames
    ]
    wrong_shard = rf.published_frames(key, 2, b"x")
    wrong_shard[0] = rf.topic((rf.shard_of(key) + 1) % rf.SHARD_COUNT) + wrong_shard[0][2:]
    bad_published.append(wrong_shard)
    rounds = 200
    stop = threading.Event()
    served = []

    def good_client():
        # A well-behaved client on its own socket, fetching all along.
        r = rf.Requester(node.context, node.queries)
        while not stop.is_set():
            served.append(r.fetch(key, timeout=5)["status"] == rf.FOUND)
        r.close()

    t = threading.Thread(target=good_client)
    t.start()
    bad = rf.Requester(node.context, node.queries)
    try:
        for _ in range(rounds):
            for frames in bad_published:
                garbage_pub.send_raw(frames)
            bad.send_raw([os.urandom(7)])
            bad.send_raw([rf.header(rf.FETCH), b"\x00" * 5])  # a truncated fetch
        expected = rounds * (len(bad_published) + 2)
        node.wait_status(lambda s: s["malformed_frames"] >= expected, 20,
                         f"{expected} malformed messages counted")
        # A frame over ZMQ_MAXMSGSIZE: libzmq drops that connection, the node carries on.
        huge = rf.Requester(node.context, node.queries)
        huge.send_raw([rf.header(rf.STATUS_REQUEST), b"\x00" * (rf.MAX_FRAME_SIZE + 1)])
        wait_for(lambda: len(served) > 50, 10, "the good client to be served meanwhile")
        huge.close()
    finally:
        stop.set()
        t.join(20)
        bad.close()
    assert all(served)
    status = node.status()
    assert status["malformed_frames"] == expected
    assert status["version_mismatches"] == 2 * rounds  # the two updates of other versions
    assert status["updates_applied"] == 1
    # Error replies name the problem; the version mismatch is answered as one.
    bad = rf.Requester(node.context, node.queries)
    bad.send_raw([rf.header(rf.STATUS_REQUEST, rf.PROTOCOL_VERSION - 1), b"\x00" * 8])
    answer = bad.receive()
    assert answer["type"] == rf.ERROR and answer["code"] == rf.VERSION_MISMATCH
    bad.send_raw([rf.header(rf.FETCH), b"\x00" * 5])
    answer = bad.receive()
    assert answer["type"] == rf.ERROR and answer["code"] == rf.MALFORMED
    assert "truncated" in answer["text"]
    bad.close()
    # Logged, but rate-limited: far fewer lines than messages.
    lines = [l for l in node.log_text().splitlines() if "malformed" in l]
    assert 1 <= len(lines) < 30
    assert node.proc.poll() is None
    garbage_pub.close()
    pub.close()


def test_random_and_truncated_frames_leave_the_node_serving(node):
    """Fuzz-style: every valid message cut at every length, bytes flipped in valid messages and
    random multipart messages, to both sockets; the node stays up, counts them, and a good
    client's sessions are intact and served."""
    rng = random.Random(20261127)
    pub = node.publisher()
    pub.wait_subscribed()
    sessions = {new_key(): os.urandom(rng.randrange(1, 300)) for _ in range(50)}
    for key, data in sessions.items():
        pub.publish(key, 5, data)
    applied(node, len(sessions))
    key = next(iter(sessions))
    valid_requests = [rf.fetch_frames(1, key), rf.status_frames(2),
                      rf.heartbeat_frames(3, b"F" * 16, 1, 1), rf.snapshot_request_frames(4, [0])]
    fuzz_key = new_key()
    valid_published = [rf.published_frames(fuzz_key, 1, b"x", agent_id=b"F" * 16),
                       rf.published_frames(fuzz_key, 1, tombstone=True, agent_id=b"F" * 16)]

    def mutations(frames):
        flat = b"".join(frames)
        for cut in range(len(flat)):  # every truncation of the last frame, and of the whole
            yield frames[:-1] + [frames[-1][:max(0, len(frames[-1]) - 1 - cut)]]
        for _ in range(30):
            f = [bytearray(x) for x in frames]
            i = rng.randrange(len(f))
            if f[i]:
                f[i][rng.randrange(len(f[i]))] ^= 1 << rng.randrange(8)
            yield [bytes(x) for x in f]

    def random_message():
        return [os.urandom(rng.randrange(0, 64)) for _ in range(rng.randrange(1, 7))]

    fuzz_pub = node.publisher(agent_id=b"F" * 16)
    fuzz_pub.wait_subscribed()
    fuzz_req = rf.Requester(node.context, node.queries)
    sent = 0
    for frames in valid_requests:
        for m in mutations(frames):
            fuzz_req.send_raw(m)
            sent += 1
    for frames in valid_published:
        for m in mutations(frames):
            fuzz_pub.send_raw(m)
    for _ in range(2000):
        fuzz_req.send_raw(random_message())
        m = random_message()
        m[0] = rf.topic(rng.randrange(rf.SHARD_COUNT)) + m[0][2:]  # on a subscribed topic
        fuzz_pub.send_raw(m)
    # The node answers what it can (errors, replies) and drops the rest; wait until it has gone
    # through everything: a request sent after the fuzz is answered after it.
    after = rf.Requester(node.context, node.queries)
    wait_for(lambda: after.status(timeout=5)["malformed_frames"] > 1000, 30,
             "the fuzz traffic counted as malformed")
    assert node.proc.poll() is None
    for key, data in sessions.items():
        reply = after.fetch(key)
        assert reply["status"] == rf.FOUND and reply["version"] == 5 and reply["data"] == data
    pub.publish(key, 6, b"after the fuzz")
    wait_for(lambda: after.fetch(key)["version"] == 6, 10, "a good update applied after the fuzz")
    assert after.fetch(key)["data"] == b"after the fuzz"
    for s in (fuzz_pub, fuzz_req, after, pub):
        s.close()


def test_memory_limit_refuses_new_sessions():
    with RssNode(extra=["--max-memory", "256K"]) as node:
        pub = node.publisher()
        pub.wait_subscribed()
        keys = [new_key() for _ in range(400)]
        for k in keys:
            pub.publish(k, 1, b"m" * 1024)
        node.wait_status(lambda s: s["updates_applied"] + s["refused_memory"] == 400, 10,
                         "400 updates handled")
        status = node.status()
        assert status["refused_memory"] > 100
        assert status["bytes"] <= 256 * 1024
        assert status["max_memory"] == 256 * 1024
        assert "memory limit" in node.log_text()
        # Sessions it holds still take new versions.
        held = next(k for k in keys if node.fetch(k)["status"] == rf.FOUND)
        pub.publish(held, 2, b"n" * 1024)
        wait_for(lambda: node.fetch(held)["version"] == 2, 5, "the update of a held session")
        pub.close()


def test_config_file_check_and_errors(tmp_path):
    n = RssNode(name="unused")
    try:
        good = tmp_path / "good.conf"
        good.write_text(f"# test\nname = from-file\nupdates = {n.updates}\nqueries = {n.queries}\n"
                        "max-memory = 1G\n")
        code, out, err = n.run_cli("--config", str(good), "--check-config")
        assert code == 0, err
        assert "configuration OK" in out and "from-file" in out
        bad = tmp_path / "bad.conf"
        bad.write_text("name = x\n\nreplicas = many\n")
        code, _, err = n.run_cli("--config", str(bad), "--check-config")
        assert code == 1
        assert f"{bad}:3: replicas must be" in err
        code, _, err = n.run_cli("--name", "x", "--updates", n.updates, "--check-config")
        assert code == 1 and "no queries endpoint" in err
        # The shipped example stays valid.
        example = rf.HERE.parents[1] / "conf" / "rss_node.conf"
        code, out, err = n.run_cli("--config", str(example), "--check-config")
        assert code == 0, err
    finally:
        n.cleanup()
    # A node started from a config file; the command line wins over it.
    conf = "name = from-file\nlog-level = debug\nmax-memory = 64M\n"
    with RssNode(name="from-flag", config_text=conf) as node:
        status = node.status()
        assert status["name"] == "from-flag"
        assert status["max_memory"] == 64 << 20


def test_sigint_and_sigterm_stop_cleanly():
    for sig in (signal.SIGINT, signal.SIGTERM):
        node = RssNode()
        node.start()
        try:
            assert node.stop(sig=sig) == 0
            assert re.search(r"info: RN0102: rss_node node-a stopping", node.log_text())
        finally:
            node.cleanup()


def test_peers_are_watched():
    with RssNode(name="node-a") as a:
        with RssNode(name="node-b", peers=[a.queries]) as b:
            b.wait_status(lambda s: s["peers"] and s["peers"][0]["state"] == "up", 10,
                          "node-b to see node-a up")
            peer = b.status()["peers"][0]
            assert peer["name"] == "node-a" and peer["endpoint"] == a.queries
            a.stop()
            b.wait_status(lambda s: s["peers"][0]["state"] == "down", 10,
                          "node-b to see node-a down")
