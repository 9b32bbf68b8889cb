// `--metrics ADDRESS:PORT`: the node's figures for Prometheus over HTTP (GET /metrics), served by
// libmicrohttpd from a thread of its own. The node's loop hands it the page as text once a second
// (publish); a scrape reads the last one, so it never waits on the loop and the loop never waits
// on a scraper. A scraper cannot make it hold much: at most kMaxConnections connections,
// kMaxConnectionsPerAddress from one address, each closed after kTimeoutS without a complete
// request, 64 KiB of request at most, and requests have no body to read. What libmicrohttpd
// refuses or drops (a connection past a limit, one that timed out) it says, and the node logs
// it: RN0405, at most a line each 10 s, with the number held back, and counts it for the status
// (metrics_refused).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "rss_node/log.h"

struct MHD_Daemon;

namespace rhythm::node {

// Whether `text` is an address start() takes; false with the reason in `*error`.
bool check_metrics_address(const std::string &text, std::string *error);

class MetricsServer {
  public:
    static constexpr unsigned kMaxConnections = 16;
    static constexpr unsigned kMaxConnectionsPerAddress = 4;
    static constexpr unsigned kTimeoutS = 5;

    MetricsServer() = default;
    ~MetricsServer();
    MetricsServer(const MetricsServer &) = delete;
    MetricsServer &operator=(const MetricsServer &) = delete;

    // Listens on `address` ("HOST:PORT": an IPv4 address, or an IPv6 one in brackets); false
    // with the reason in `*error`.
    bool start(const std::string &address, std::string *error);
    bool running() const { return daemon_ != nullptr; }
    // The port it listens on (the one given, or the one the kernel chose for port 0).
    unsigned port() const { return port_; }

    void publish(std::string text);
    // What libmicrohttpd refused or dropped so far (each one it logged), for the status.
    std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

    // For the libmicrohttpd callbacks.
    std::string page();
    void log_message(const char *text);

  private:
    MHD_Daemon *daemon_ = nullptr;
    unsigned port_ = 0;
    std::mutex mutex_;
    std::string page_;
    std::mutex log_mutex_;
    RateLimitedLog log_{10000};
    std::atomic<std::uint64_t> refused_{0};
};

}  // namespace rhythm::node
