// The node's ZAP handler (ZeroMQ RFC 27): libzmq asks it about every CURVE handshake on the node's
// sockets, and it admits a client only when the client's public key is in the --curve-clients
// file or is the bank's own (the nodes of one bank share the server key pair and use it to talk to
// each other). It runs in the node's event loop on the context's inproc ZAP endpoint, which must
// be bound before any CURVE socket accepts a connection. SIGHUP re-reads the file.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "rss_node/log.h"
#include "rss_node/node_config.h"

namespace rhythm::node {

// The node's CURVE material, read from the files its configuration names.
struct NodeKeys {
    std::string secret;  // the bank's secret key (Z85)
    std::string public_key;
    std::set<std::string> clients;  // admitted client keys, 32 bytes each

    bool enabled() const { return !secret.empty(); }
};

// Reads --curve-secret and --curve-clients. With neither set, `*keys` stays disabled.
bool load_node_keys(const NodeConfig &config, NodeKeys *keys, std::string *error);

class ZapHandler {
  public:
    ZapHandler() = default;
    ~ZapHandler();
    ZapHandler(const ZapHandler &) = delete;
    ZapHandler &operator=(const ZapHandler &) = delete;

    // Binds the ZAP endpoint of `context`.
    bool start(void *context, const NodeKeys &keys, std::string clients_file, std::string *error);

    // The socket as a plain descriptor to poll (wire::pollable_descriptor): when it is readable,
    // answer() must run. -1 before start().
    int fd() const { return fd_; }

    // Answers every request waiting (none before start()).
    void answer(std::uint64_t now_mono_ms);

    // Re-reads the clients file; on failure the old list stays in force.
    bool reload(std::string *error);

    // Closes the socket; must happen before the context is terminated.
    void close();

    std::size_t clients_listed() const { return clients_.size(); }
    std::uint64_t admitted() const { return admitted_; }
    std::uint64_t refused() const { return refused_; }

  private:
    void *socket_ = nullptr;
    int fd_ = -1;
    std::string clients_file_;
    std::string bank_public_;  // 32 bytes
    std::set<std::string> clients_;
    std::uint64_t admitted_ = 0;
    std::uint64_t refused_ = 0;
    RateLimitedLog refusal_log_{1000};
};

}  // namespace rhythm::node
