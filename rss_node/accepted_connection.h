// The few things the node does to one accepted connection behind libzmq's back, by its
// descriptor (from the socket monitor): who is at the other end, how much libzmq has read from
// it, and hanging it up (libzmq then closes it and frees what it held for it).
#pragma once

#include <cstdint>
#include <string>

namespace rhythm::node {

// "host:port" ("[v6]:port"), or empty when `fd` is not a connected socket.
std::string peer_address(int fd);

// The bytes read from a TCP connection so far: received, less what still waits in the socket.
// False for anything else (an ipc:// connection, a closed descriptor).
bool bytes_read_from(int fd, std::uint64_t *bytes);

// Shuts the connection down if `fd` is still the one from `expected_peer` (a descriptor number
// is reused as soon as libzmq closes it). True when it did.
bool hang_up(int fd, const std::string &expected_peer);

}  // namespace rhythm::node
