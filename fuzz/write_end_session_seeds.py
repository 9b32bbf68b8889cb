#!/usr/bin/env python3
"""Writes the operator-command fuzzer's seed corpus, fuzz/corpus/end_session/, in the input layout
of fuzz/end_session_input.h: the command's session arguments (a bare ID, a signed cookie's value,
a bad one) and end-session requests (one session, every session) encoded by the Python
implementation of docs/protocol.md (tests/integration/rss_node_fixture.py).

Usage: /usr/bin/python3 fuzz/write_end_session_seeds.py
"""

import pathlib
import struct
import sys

TOP = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "integration"))
import rss_node_fixture as rf  # noqa: E402
from rhythm_httpd import session_id_of  # noqa: E402

KEY = bytes(range(16))


def request(owned_bits, frames):
    return bytes([1, owned_bits]) + b"".join(struct.pack(">H", len(f)) + f for f in frames)


def seeds():
    return {
        "argument_id": b"\x00" + session_id_of(KEY).encode(),
        "argument_signed": b"\x00" + session_id_of(KEY).encode() + b".c2lnbmF0dXJlLXRhZw",
        "argument_bad": b"\x00" + b"not a session id",
        "one_owned": request(0xFF, rf.end_session_frames(1, KEY)),
        "one_not_owned": request(0x00, rf.end_session_frames(2, KEY)),
        "all_half_owned": request(0x55, rf.end_session_frames(3)),
    }


def main():
    out = TOP / "fuzz" / "corpus" / "end_session"
    out.mkdir(parents=True, exist_ok=True)
    for file_name, data in seeds().items():
        (out / file_name).write_bytes(data)


if __name__ == "__main__":
    main()
