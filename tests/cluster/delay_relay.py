"""A TCP relay that delays what it forwards: added latency and jitter between the hosts of a
cluster (this machine's kernel has no netem). It runs on the host whose connections it delays
(lag.py starts it): an nftables rule there redirects each new TCP connection the host opens to
another host of the cluster to this relay, which finds the real destination (SO_ORIGINAL_DST),
connects to it with a mark the rule lets through, and forwards both ways, each chunk held for the
destination's current delay plus a random share of its jitter, in order.

Delays are per destination address and apply at once, to open connections too: a line
`ADDRESS DELAY_MS JITTER_MS` on stdin sets them, and the relay answers `ok` on stdout. It prints
`ready PORT` once it listens on 127.0.0.1:PORT.

Bounded: at most QUEUED_CHUNKS chunks of CHUNK bytes wait per direction of a connection; past
that the relay stops reading, and TCP's own flow control holds the sender.
"""

import asyncio
import random
import socket
import struct
import sys
import threading

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
MARK = 0x5259  # the relay's own connections: the redirect rule lets them through
# As the endpoints' own ZMQ_CONNECT_TIMEOUT (wire/zmq_io.h): a connect the network does not answer
# is given up and the client's connection reset, so it connects again at once. Without it the
# client, connected to the relay at once, waited for its handshake timeout (30 s), and came back
# that much later than without the relay after a cut healed.
CONNECT_TIMEOUT_S = 1.0
CHUNK = 65536
QUEUED_CHUNKS = 64


class Delays:
    """The delay and jitter, in seconds, of each destination address (none: 0)."""

    def __init__(self):
        self.by_address = {}

    def set(self, address, delay_ms, jitter_ms):
        self.by_address[address] = (delay_ms / 1000.0, jitter_ms / 1000.0)

    def draw(self, address):
        delay, jitter = self.by_address.get(address, (0.0, 0.0))
        return delay + random.uniform(0.0, jitter)


async def forward(reader, writer, delays, address):
    """What `reader` receives, written to `writer` after its delay, in order; EOF passed on."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue(QUEUED_CHUNKS)

    async def receive():
        last_due = 0.0
        while True:
            try:
                data = await reader.read(CHUNK)
            except OSError:
                data = b""
            # Jitter never reorders: a chunk goes no earlier than the one before it.
            last_due = max(last_due, loop.time() + delays.draw(address))
            await queue.put((last_due, data))
            if not data:
                return

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    tasks = [asyncio.ensure_future(receive()), asyncio.ensure_future(send())]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:  # one failed: the other must not wait on a dead queue
            task.cancel()


async def relay(client_reader, client_writer, delays):
    client = client_writer.get_extra_info("socket")
    raw = client.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    (port,) = struct.unpack(">H", raw[2:4])
    address = socket.inet_ntoa(raw[4:8])
    upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    upstream.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, MARK)
    # As the endpoints' own sockets (ZeroMQ sets it): Nagle's wait for an acknowledgement, with
    # the peer's delayed ACK, would add up to 40 ms of its own to a small write.
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    upstream.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(upstream, (address, port)),
                               CONNECT_TIMEOUT_S)
    except (OSError, asyncio.TimeoutError):
        # Refused, unreachable or unanswered: the client sees its connection reset, as without the
        # relay.
        upstream.close()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client_writer.close()
        return
    server_reader, server_writer = await asyncio.open_connection(sock=upstream)
    try:
        await asyncio.gather(forward(client_reader, server_writer, delays, address),
                             forward(server_reader, client_writer, delays, address))
    except OSError:
        pass
    finally:
        for w in (client_writer, server_writer):
            w.close()


def read_commands(loop, delays):
    """stdin lines `ADDRESS DELAY_MS JITTER_MS`, applied in the loop; `ok` once applied."""
    for line in sys.stdin:
        fields = line.split()
        if len(fields) != 3:
            print(f"error: expected ADDRESS DELAY_MS JITTER_MS, got {line.strip()!r}", flush=True)
            continue
        address, delay_ms, jitter_ms = fields[0], float(fields[1]), float(fields[2])
        done = threading.Event()

        def apply():
            delays.set(address, delay_ms, jitter_ms)
            done.set()
        loop.call_soon_threadsafe(apply)
        done.wait()
        print("ok", flush=True)
    loop.call_soon_threadsafe(loop.stop)  # stdin closed: whoever started us is gone


def main():
    delays = Delays()
    loop = asyncio.new_event_loop()
    # Each connection's task, held here: the stream protocol drops its own reference when the
    # client's side closes, and the collector then destroyed the task while it still forwarded
    # what the client had sent ("Task was destroyed but it is pending!").
    running = set()

    def start_relay(reader, writer):
        task = loop.create_task(relay(reader, writer, delays))
        running.add(task)
        task.add_done_callback(running.discard)

    server = loop.run_until_complete(asyncio.start_server(start_relay, "127.0.0.1", 0,
                                                          backlog=256))
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    threading.Thread(target=read_commands, args=(loop, delays), daemon=True).start()
    loop.run_forever()


if __name__ == "__main__":
    main()
