"""A private rss_node for tests, and a client that speaks its protocol from Python.

`RssNode` runs the real rss_node binary on free 127.0.0.1 ports with its own temporary
directory (config file, stderr log) and stops it by its PID. The binary is
$RHYTHM_BUILD_DIR/rss_node/rss_node (CTest sets RHYTHM_BUILD_DIR), else _build's. Set
RHYTHM_KEEP_TMP=1 to keep each node's directory for reading its log. Given a `host` of
tests/cluster, it runs there, on that host's address, and the test's queries go from there.

The encoders and decoders below are a second, independent implementation of docs/protocol.md
(the first is wire/ in C++): a test that passes checks the document as much as the code.
"""

import json
import os
import pathlib
import signal
import struct
import subprocess
import tempfile
import time

import zmq

from rhythm_httpd import LOCAL, ManagedServer, free_port, wait_for

HERE = pathlib.Path(__file__).resolve().parent

PROTOCOL_VERSION = 7
SHARD_COUNT = 1024
MAX_FRAME_SIZE = 1024 * 1024 + 64 * 1024

UPDATE, TOMBSTONE, FETCH, FETCH_REPLY, HEARTBEAT, HEARTBEAT_ACK, RESEND, REFUSED = range(1, 9)
SNAPSHOT_REQUEST, SNAPSHOT_RECORD, SNAPSHOT_END, STATUS_REQUEST, STATUS_REPLY = range(9, 14)
PING, PONG, ERROR, END_SESSION, END_SESSION_REPLY, HANDOVER, HANDOVER_REPLY = range(14, 21)
CATCH_UP_OFFER = 21
RESTARTING = 22
END_ONE, END_ALL = 0, 1  # an END_SESSION's scope
ENDED, NOT_OWNER, END_REFUSED = 0, 1, 2  # an END_SESSION_REPLY's outcome

FOUND, NOT_FOUND, DELETED = 0, 1, 2
ACK_FLAG_FULL = 0x01  # a heartbeat-ack's flags: the node has refused changes for lack of memory
VERSION_MISMATCH, MALFORMED, UNSUPPORTED, BUSY = range(1, 5)  # an ERROR's code
# A fetch-reply's flags; ASKING: not the answer yet, the node asks a server first (a handover).
FETCH_FLAG_OWNER, FETCH_FLAG_PROVISIONAL, FETCH_FLAG_ASKING = 0x01, 0x02, 0x04


def binary_path():
    build = os.environ.get("RHYTHM_BUILD_DIR") or str(HERE.parents[1] / "_build")
    path = pathlib.Path(build) / "rss_node" / "rss_node"
    if not path.exists():
        raise RuntimeError(f"rss_node not found at {path}: build first or set RHYTHM_BUILD_DIR")
    return str(path)


# ---- session keys and shards -------------------------------------------------------------------

def fnv1a64(data, seed=0xCBF29CE484222325):
    h = seed
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def shard_of(key):
    return fnv1a64(key) % SHARD_COUNT


def parse_shard_ranges(text):
    """A shard list as status writes it ("0-3,7") as a set of shard numbers."""
    shards = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        shards.update(range(int(first), int(last or first) + 1))
    return shards


def key_in_shard(shard):
    """A random session key whose shard is `shard`."""
    while True:
        key = os.urandom(16)
        if shard_of(key) == shard:
            return key


def new_key():
    return os.urandom(16)


def now_ms():
    return int(time.time() * 1000)


# ---- encoding ----------------------------------------------------------------------------------

def header(msg_type, version=PROTOCOL_VERSION):
    return bytes([version, msg_type])


def record_bytes(key, version, expires_at_ms, origin, data=b"", tombstone=False):
    origin = origin.encode() if isinstance(origin, str) else origin
    return (key + struct.pack(">QQBBI", version, expires_at_ms, 1 if tombstone else 0,
                              len(origin), len(data)) + origin + data)


def topic(shard):
    return struct.pack(">H", shard)


def published_frames(key, version, data=b"", origin="web1", expires_at_ms=None, tombstone=False,
                     agent_id=b"A" * 16, epoch=1, sequence=1, shard_sequence=None):
    """A published update or tombstone: one frame, topic + header + body."""
    if expires_at_ms is None:
        expires_at_ms = now_ms() + 3600 * 1000
    if shard_sequence is None:
        shard_sequence = sequence
    body = (agent_id + struct.pack(">QQQ", epoch, sequence, shard_sequence) +
            record_bytes(key, version, expires_at_ms, origin, data, tombstone))
    return [topic(shard_of(key)) + header(TOMBSTONE if tombstone else UPDATE) + body]


def fetch_frames(request_id, key):
    return [header(FETCH), struct.pack(">Q", request_id) + key]


def handover_reply_frames(request_id, key=None, version=None, origin="web1", data=b""):
    """An agent's answer to a handover: its newer copy (key and version given), else nothing
    newer."""
    if key is None:
        return [header(HANDOVER_REPLY), struct.pack(">QB", request_id, 0)]
    return [header(HANDOVER_REPLY), struct.pack(">QB", request_id, 1) +
            record_bytes(key, version, now_ms() + 3600 * 1000, origin, data)]


def end_session_frames(request_id, key=None):
    """An operator's end of the session `key`, or of every session when `key` is None."""
    scope = END_ALL if key is None else END_ONE
    return [header(END_SESSION), struct.pack(">QB", request_id, scope) + (key or bytes(16))]


def status_frames(request_id):
    return [header(STATUS_REQUEST), struct.pack(">Q", request_id)]


def heartbeat_frames(request_id, agent_id, epoch, next_sequence, server_name="web1", heads=None):
    """`heads`: {shard: the last shard sequence used}, the answer to a resend."""
    name = server_name.encode()
    heads = heads or {}
    return [header(HEARTBEAT), struct.pack(">Q", request_id) + agent_id +
            struct.pack(">QQB", epoch, next_sequence, len(name)) + name +
            struct.pack(">H", len(heads)) +
            b"".join(struct.pack(">HQ", s, h) for s, h in sorted(heads.items()))]


def shard_set_bytes(shards):
    """The 128-byte shard set of `shards` (shard 0 is the high bit of byte 0)."""
    bits = bytearray(SHARD_COUNT // 8)
    for s in shards:
        bits[s // 8] |= 0x80 >> (s % 8)
    return bytes(bits)


def heartbeat_ack_frames(request_id, epoch, node_name, updates_endpoint, owned=range(SHARD_COUNT),
                         full=False, refused=0, refusing=(), shard_acks=None):
    """A node's answer to a heartbeat; `shard_acks`: {shard: the shard sequence held up to}."""
    name, endpoint = node_name.encode(), updates_endpoint.encode()
    shard_acks = shard_acks or {}
    return [header(HEARTBEAT_ACK), struct.pack(">QQB", request_id, epoch, len(name)) + name +
            struct.pack(">H", len(endpoint)) + endpoint + shard_set_bytes(owned) +
            struct.pack(">BQ", ACK_FLAG_FULL if full else 0, refused) + shard_set_bytes(refusing) +
            struct.pack(">H", len(shard_acks)) +
            b"".join(struct.pack(">HQ", s, q) for s, q in sorted(shard_acks.items()))]


def snapshot_request_frames(request_id, shards=None):
    shards = range(SHARD_COUNT) if shards is None else shards
    return [header(SNAPSHOT_REQUEST), struct.pack(">Q", request_id) + shard_set_bytes(shards)]


# ---- decoding ----------------------------------------------------------------------------------

def decode_record(body):
    key = body[:16]
    version, expires, flags, origin_len, data_len = struct.unpack(">QQBBI", body[16:38])
    origin = body[38:38 + origin_len].decode()
    data = body[38 + origin_len:38 + origin_len + data_len]
    assert len(body) == 38 + origin_len + data_len, "record length"
    return {"key": key, "version": version, "expires_at_ms": expires, "tombstone": bool(flags & 1),
            "origin": origin, "data": data}


def shard_set_of(bits):
    """The shards of a 128-byte shard set (shard 0 is the high bit of byte 0)."""
    return {s for s in range(SHARD_COUNT) if bits[s // 8] & (0x80 >> (s % 8))}


def decode_reply(frames):
    """A node's answer as a dict with at least 'type'."""
    assert len(frames) == 2, f"{len(frames)} frames"
    head, body = frames
    assert len(head) == 2 and head[0] == PROTOCOL_VERSION, head
    t = head[1]
    out = {"type": t}
    if t == FETCH_REPLY:
        out["request_id"], out["status"], flags = struct.unpack(">QBB", body[:10])
        assert flags in (0, FETCH_FLAG_OWNER, FETCH_FLAG_OWNER | FETCH_FLAG_PROVISIONAL,
                         FETCH_FLAG_OWNER | FETCH_FLAG_ASKING), f"fetch-reply flags {flags:#x}"
        out["owner"] = bool(flags & FETCH_FLAG_OWNER)
        out["provisional"] = bool(flags & FETCH_FLAG_PROVISIONAL)
        out["asking"] = bool(flags & FETCH_FLAG_ASKING)
        if out["status"] != NOT_FOUND:
            out.update(decode_record(body[10:]))
    elif t == HEARTBEAT_ACK:
        out["request_id"], out["epoch"] = struct.unpack(">QQ", body[:16])
        n = body[16]
        out["node_name"] = body[17:17 + n].decode()
        (m,) = struct.unpack(">H", body[17 + n:19 + n])
        out["updates_endpoint"] = body[19 + n:19 + n + m].decode()
        at = 19 + n + m
        out["owned"] = shard_set_of(body[at:at + SHARD_COUNT // 8])
        at += SHARD_COUNT // 8
        flags, out["refused"] = struct.unpack(">BQ", body[at:at + 9])
        assert flags & ~ACK_FLAG_FULL == 0, f"unknown heartbeat-ack flags {flags:#x}"
        out["full"] = bool(flags & ACK_FLAG_FULL)
        at += 9
        out["refusing"] = shard_set_of(body[at:at + SHARD_COUNT // 8])
        at += SHARD_COUNT // 8
        (count,) = struct.unpack(">H", body[at:at + 2])
        out["shard_acks"] = dict(struct.unpack(">HQ", body[at + 2 + 10 * i:at + 12 + 10 * i])
                                 for i in range(count))
    elif t == RESEND:
        out["epoch"], out["from_sequence"] = struct.unpack(">QQ", body[:16])
        out["shards"] = shard_set_of(body[16:])
    elif t == REFUSED:
        (count,) = struct.unpack(">H", body[:2])
        out["refusals"] = [(body[2 + 24 * i:18 + 24 * i],
                            struct.unpack(">Q", body[18 + 24 * i:26 + 24 * i])[0])
                           for i in range(count)]
    elif t == SNAPSHOT_RECORD:
        (out["request_id"],) = struct.unpack(">Q", body[:8])
        out.update(decode_record(body[8:]))
    elif t == SNAPSHOT_END:
        out["request_id"], out["records"] = struct.unpack(">QQ", body)
    elif t == STATUS_REPLY:
        (out["request_id"],) = struct.unpack(">Q", body[:8])
        out["status"] = json.loads(body[8:])
    elif t in (PING, PONG):
        (out["request_id"],) = struct.unpack(">Q", body[:8])
        out["node_name"] = body[9:9 + body[8]].decode()
    elif t == END_SESSION:
        out["request_id"], out["scope"] = struct.unpack(">QB", body[:9])
        out["key"] = body[9:]
    elif t == END_SESSION_REPLY:
        out["request_id"], out["outcome"], out["count"] = struct.unpack(">QBQ", body)
    elif t == HANDOVER:
        out["request_id"], out["key"], out["version"] = (struct.unpack(">Q", body[:8])[0],
                                                         body[8:24],
                                                         struct.unpack(">Q", body[24:32])[0])
    elif t == ERROR:
        out["request_id"], out["code"] = struct.unpack(">QB", body[:9])
        out["text"] = body[9:].decode(errors="replace")
    return out


# ---- clients -----------------------------------------------------------------------------------

class KeyPair:
    """A CURVE key pair as `rss_node keygen PATH` writes it: PATH.key and PATH.pub."""

    def __init__(self, stem):
        self.stem = pathlib.Path(stem)
        result = subprocess.run([binary_path(), "keygen", str(self.stem)], capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(f"rss_node keygen failed: {result.stderr.decode()}")
        self.secret_path = self.stem.with_name(self.stem.name + ".key")
        self.public_path = self.stem.with_name(self.stem.name + ".pub")
        self.secret = self.secret_path.read_text().strip().encode()
        self.public = self.public_path.read_text().strip().encode()


class Curve:
    """What a socket needs to be a CURVE client of a bank: the bank's public key and a pair."""

    def __init__(self, bank_public, pair):
        self.bank_public = bank_public
        self.pair = pair

    def apply(self, sock):
        sock.curve_serverkey = self.bank_public
        sock.curve_publickey = self.pair.public
        sock.curve_secretkey = self.pair.secret


def secure(sock, curve):
    if curve is not None:
        curve.apply(sock)
    return sock


def pinging(sock):
    """A PING each second, as every client Rhythm ships sends (wire::set_network_options): the
    node hangs up on a connection from which nothing came for 4 s."""
    sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
    return sock


class BankKeys:
    """A bank's key pair and a client allowlist file, in `directory`. `client(name)` makes a
    listed client's pair (and its `Curve`); `stranger(name)` one that is not listed."""

    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.bank = KeyPair(self.dir / "bank")
        self.clients_path = self.dir / "clients"
        self.clients_path.write_text("# clients admitted by the bank\n")

    def stranger(self, name):
        return Curve(self.bank.public, KeyPair(self.dir / name))

    def client(self, name):
        curve = self.stranger(name)
        self.allow(curve.pair)
        return curve

    def allow(self, pair):
        with open(self.clients_path, "a") as f:
            f.write(f"{pair.public.decode()}  # {pair.stem.name}\n")

    def node_options(self):
        return ["--curve-secret", str(self.bank.secret_path),
                "--curve-clients", str(self.clients_path)]

    def operator_options(self, curve):
        return ["--curve-server", str(self.bank.public_path),
                "--curve-secret", str(curve.pair.secret_path)]


class Publisher:
    """An agent's publishing side: an XPUB (so it sees the node's subscriptions arrive) with
    ZMQ_IMMEDIATE, connected to a node's updates endpoint."""

    def __init__(self, context, endpoint, agent_id=b"A" * 16, epoch=1, origin="web1",
                 curve=None):
        self.socket = pinging(secure(context.socket(zmq.XPUB), curve))
        self.socket.setsockopt(zmq.IMMEDIATE, 1)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, 100000)
        self.socket.setsockopt(zmq.RCVHWM, 0)  # 1024 subscriptions must all get through
        # Every subscription, even of a topic already subscribed: a restarted node's arrive
        # while its predecessor's pipe may not be gone yet.
        self.socket.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.socket.connect(endpoint)
        self.topics = set()
        self.subscribe_events = 0
        self.agent_id = agent_id
        self.epoch = epoch
        self.origin = origin
        self.sequence = 0
        self.shard_sequences = {}  # shard -> the last shard sequence used

    def _drain_subscriptions(self):
        while self.socket.poll(0):
            msg = self.socket.recv()
            if msg[:1] == b"\x01":
                self.topics.add(msg[1:])
                self.subscribe_events += 1
            else:
                self.topics.discard(msg[1:])
        return len(self.topics) == SHARD_COUNT

    def mark(self):
        """The count of subscriptions seen so far: pass it to wait_subscribed(after=...) to wait
        for a restarted node's own subscriptions rather than its predecessor's."""
        self._drain_subscriptions()
        return self.subscribe_events

    def wait_subscribed(self, timeout=10, after=None):
        """Until the node has subscribed to every shard (no slow-joiner loss after this)."""
        def done():
            full = self._drain_subscriptions()
            return full and (after is None or self.subscribe_events >= after + SHARD_COUNT)
        wait_for(done, timeout, "the node's subscriptions")

    def publish(self, key, version, data=b"", tombstone=False, expires_at_ms=None, origin=None,
                sequence=None, shard_sequence=None):
        """Publishes the next message of the stream (or the one numbered `sequence` and
        `shard_sequence`, to play losses and re-sends)."""
        if sequence is None:
            self.sequence += 1
            sequence = self.sequence
        if shard_sequence is None:
            shard = shard_of(key)
            self.shard_sequences[shard] = self.shard_sequences.get(shard, 0) + 1
            shard_sequence = self.shard_sequences[shard]
        self.socket.send_multipart(published_frames(
            key, version, data, origin or self.origin, expires_at_ms, tombstone,
            self.agent_id, self.epoch, sequence, shard_sequence))

    def send_raw(self, frames):
        self.socket.send_multipart(frames)

    def close(self):
        self.socket.close(0)


class Requester:
    """A DEALER connected to a node's queries endpoint."""

    def __init__(self, context, endpoint, curve=None):
        self.socket = pinging(secure(context.socket(zmq.DEALER), curve))
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.next_id = 1

    def send_raw(self, frames):
        self.socket.send_multipart(frames)

    def receive(self, timeout=5):
        if not self.socket.poll(int(timeout * 1000)):
            raise TimeoutError("no answer from the node")
        return decode_reply(self.socket.recv_multipart())

    def ask(self, make_frames, timeout=5):
        """Sends a request built by make_frames(request_id); returns the answer with that id."""
        rid = self.next_id
        self.next_id += 1
        self.send_raw(make_frames(rid))
        deadline = time.monotonic() + timeout
        while True:
            reply = self.receive(max(0.01, deadline - time.monotonic()))
            if reply.get("request_id") == rid:
                return reply
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer to request {rid}")

    def fetch(self, key, timeout=5):
        return self.ask(lambda rid: fetch_frames(rid, key), timeout)

    def status(self, timeout=5):
        return self.ask(status_frames, timeout)["status"]

    def close(self):
        self.socket.close(0)


def context_on(host):
    """A ZeroMQ context whose connections are made from `host`, whichever thread uses it: its I/O
    threads make them, and they start with its first socket, made there."""
    def make():
        context = zmq.Context()
        context.socket(zmq.DEALER).close()
        return context
    return host.call(make)


class RssNode(ManagedServer):
    """One private rss_node. `extra` is a list of additional command-line arguments. With `keys`
    (a BankKeys) the node runs under CURVE, and the test's own requests use `curve` (a listed
    client's Curve, made when not given). `host`: where it runs (rhythm_httpd.LOCAL, or a
    tests/cluster host); the fixture's own requests (status, fetch) go from there."""

    def __init__(self, name="node-a", peers=(), extra=(), config_text=None, keys=None,
                 curve=None, host=LOCAL):
        self.name = name
        self.host = host
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"rhythm-{name}-"))
        self.updates_port = host.call(free_port, host.address)
        self.queries_port = host.call(free_port, host.address)
        self.peers = list(peers)
        self.extra = list(extra)
        self.config_path = None
        if config_text is not None:
            self.config_path = self.dir / "rss_node.conf"
            self.config_path.write_text(config_text)
        self.log_path = self.dir / "rss_node.log"
        self.proc = None
        self.context = context_on(host)
        self._requester = None
        self.keys = keys
        self.curve = curve or (keys.client(f"{name}-tester") if keys else None)

    @property
    def updates(self):
        return f"tcp://{self.host.address}:{self.updates_port}"

    @property
    def queries(self):
        return f"tcp://{self.host.address}:{self.queries_port}"

    def command(self):
        cmd = [binary_path(), "--name", self.name, "--updates", self.updates,
               "--queries", self.queries]
        for p in self.peers:
            cmd += ["--peer", p]
        if self.config_path:
            cmd += ["--config", str(self.config_path)]
        if self.keys:
            cmd += self.keys.node_options()
        return cmd + self.extra

    def start(self, timeout=10):
        self.log_file = open(self.log_path, "ab")
        self.proc = self.host.popen(self.command(), stdout=subprocess.DEVNULL,
                                    stderr=self.log_file, cwd=self.dir)
        return self.wait_until_answering(timeout, f"{self.name} to answer on {self.queries}")

    def _answers(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                               f"{self.log_text()}")
        try:
            self.status(timeout=0.5)
            return True
        except TimeoutError:
            # A DEALER keeps unanswered requests queued: start afresh on the next try.
            self._close_requester()
            return False

    def requester(self):
        if self._requester is None:
            self._requester = Requester(self.context, self.queries, self.curve)
        return self._requester

    def _close_requester(self):
        if self._requester is not None:
            self._requester.close()
            self._requester = None

    def publisher(self, **kwargs):
        kwargs.setdefault("curve", self.curve)
        return Publisher(self.context, self.updates, **kwargs)

    def status(self, timeout=5):
        return self.requester().status(timeout)

    def fetch(self, key, timeout=5):
        return self.requester().fetch(key, timeout)

    def wait_status(self, predicate, timeout, what):
        return wait_for(lambda: predicate(self.status()), timeout, what)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, timeout=10, sig=signal.SIGTERM):
        """Stops the node by its PID; returns its exit code."""
        code = None
        self.end_process(timeout, sig)
        if self.proc:
            code = self.proc.returncode
            self.log_file.close()
        self.proc = None
        self._close_requester()
        return code

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)
        self.log_file.close()
        self.proc = None
        self._close_requester()

    def restart(self, timeout=10):
        self.stop()
        return self.start(timeout)

    def run_cli(self, *args, timeout=15):
        """Runs `rss_node ARGS...` (status, get, --check-config...): (exit code, stdout, stderr)."""
        p = self.host.run([binary_path(), *args], capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def cleanup(self):
        try:
            super().cleanup()
        finally:
            self.context.destroy(0)
