// One accepted connection, by its descriptor (see accepted_connection.h).
#include "rss_node/accepted_connection.h"

#include <arpa/inet.h>
#include <cstddef>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

namespace rhythm::node {

std::string peer_address(int fd) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getpeername(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
        return "";
    }
    char host[INET6_ADDRSTRLEN] = "";
    if (addr.ss_family == AF_INET) {
        const auto *in = reinterpret_cast<const sockaddr_in *>(&addr);
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
    }
    if (addr.ss_family == AF_INET6) {
        const auto *in6 = reinterpret_cast<const sockaddr_in6 *>(&addr);
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    return "local";  // an ipc:// client: every one is from this host
}

bool bytes_read_from(int fd, std::uint64_t *bytes) {
    tcp_info info{};
    socklen_t len = sizeof info;
    int waiting = 0;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
        len < offsetof(tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received ||
        ioctl(fd, FIONREAD, &waiting) != 0) {
        return false;
    }
    *bytes = info.tcpi_bytes_received - static_cast<std::uint64_t>(waiting);
    return true;
}

bool hang_up(int fd, const std::string &expected_peer) {
    return !expected_peer.empty() && peer_address(fd) == expected_peer &&
           shutdown(fd, SHUT_RDWR) == 0;
}

}  // namespace rhythm::node
