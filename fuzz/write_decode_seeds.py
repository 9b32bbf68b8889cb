#!/usr/bin/env python3
"""Writes the decoder fuzzer's seed corpus, fuzz/corpus/decode/: one well-formed message of each
kind, encoded by the Python implementation of docs/protocol.md (tests/integration/
rss_node_fixture.py) and by the layouts below, so that unit.wire_test checks the document, the
Python encoder and wire/ against each other. Run it again when the protocol changes.

Each seed is in the input layout of fuzz/decode_input.h: one byte that picks the decoder (0:
published, 1: a DEALER/ROUTER message), then each frame as a 2-byte big-endian length and its
bytes.

Usage: /usr/bin/python3 fuzz/write_decode_seeds.py
"""

import pathlib
import struct
import sys

TOP = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "integration"))
import rss_node_fixture as rf  # noqa: E402

KEY = bytes(range(16))
AGENT_ID = b"A" * 16
EXPIRES_AT_MS = 1_800_000_000_000


def seed(decoder, frames):
    return bytes([decoder]) + b"".join(struct.pack(">H", len(f)) + f for f in frames)


def message(msg_type, body):
    return seed(1, [rf.header(msg_type), body])


def shard_set(shards):
    bits = bytearray(rf.SHARD_COUNT // 8)
    for s in shards:
        bits[s // 8] |= 0x80 >> (s % 8)
    return bytes(bits)


def name(text):
    return bytes([len(text)]) + text.encode()


def seeds():
    live = rf.record_bytes(KEY, 5, 0, "web1", b"data")
    deleted = rf.record_bytes(KEY, 6, 0, "web1", tombstone=True)
    return {
        "update": seed(0, rf.published_frames(KEY, 5, b"counter=1", expires_at_ms=EXPIRES_AT_MS,
                                              agent_id=AGENT_ID)),
        "tombstone": seed(0, rf.published_frames(KEY, 6, expires_at_ms=EXPIRES_AT_MS,
                                                 tombstone=True, agent_id=AGENT_ID)),
        "fetch": seed(1, rf.fetch_frames(1, KEY)),
        "fetch_reply_found": message(rf.FETCH_REPLY, struct.pack(">QBB", 1, rf.FOUND, 1) + live),
        "fetch_reply_not_found": message(rf.FETCH_REPLY,
                                         struct.pack(">QBB", 1, rf.NOT_FOUND, 0)),
        "fetch_reply_deleted": message(rf.FETCH_REPLY,
                                       struct.pack(">QBB", 1, rf.DELETED, 1) + deleted),
        "fetch_reply_provisional": message(rf.FETCH_REPLY,
                                       struct.pack(">QBB", 1, rf.FOUND, 3) + live),
        "heartbeat": seed(1, rf.heartbeat_frames(3, AGENT_ID, 1, 10, heads={3: 7})),
        "heartbeat_ack": message(rf.HEARTBEAT_ACK,
                                 struct.pack(">QQ", 3, 1) + name("node-a") +
                                 struct.pack(">H", 20) + b"tcp://127.0.0.1:5556" +
                                 shard_set([3, 7]) + struct.pack(">BQ", rf.ACK_FLAG_FULL, 2) +
                                 shard_set([7]) + struct.pack(">HHQ", 1, 3, 9)),
        "resend": message(rf.RESEND, struct.pack(">QQ", 1, 10) + shard_set(range(rf.SHARD_COUNT))),
        "refused": message(rf.REFUSED, struct.pack(">H", 1) + KEY + struct.pack(">Q", 9)),
        "snapshot_request": seed(1, rf.snapshot_request_frames(4, [0, 5, 1023])),
        "snapshot_record": message(rf.SNAPSHOT_RECORD, struct.pack(">Q", 4) + live),
        "snapshot_end": message(rf.SNAPSHOT_END, struct.pack(">QQ", 4, 1)),
        "status_request": seed(1, rf.status_frames(2)),
        "status_reply": message(rf.STATUS_REPLY, struct.pack(">Q", 2) + b'{"sessions":1}'),
        "ping": message(rf.PING, struct.pack(">Q", 5) + name("node-b")),
        "pong": message(rf.PONG, struct.pack(">Q", 5) + name("node-a")),
        "error": message(rf.ERROR, struct.pack(">QB", 6, 2) + b"bad"),
        "end_session": seed(1, rf.end_session_frames(7, KEY)),
        "end_session_all": seed(1, rf.end_session_frames(8)),
        "end_session_reply": message(rf.END_SESSION_REPLY,
                                     struct.pack(">QBQ", 7, rf.ENDED, 1)),
        "handover": message(rf.HANDOVER, struct.pack(">Q", 9) + KEY + struct.pack(">Q", 5)),
        "handover_reply_newer": message(rf.HANDOVER_REPLY, struct.pack(">QB", 9, 1) + live),
        "handover_reply_deleted": message(rf.HANDOVER_REPLY, struct.pack(">QB", 9, 1) + deleted),
        "handover_reply_nothing": message(rf.HANDOVER_REPLY, struct.pack(">QB", 9, 0)),
        "catch_up_offer": message(rf.CATCH_UP_OFFER,
                                  struct.pack(">Q", 10) + shard_set([0, 1023]) + name("node-c")),
        "restarting": message(rf.RESTARTING, struct.pack(">Q", 11)),
    }


def main():
    out = TOP / "fuzz" / "corpus" / "decode"
    out.mkdir(parents=True, exist_ok=True)
    for file_name, data in seeds().items():
        (out / file_name).write_bytes(data)


if __name__ == "__main__":
    main()
