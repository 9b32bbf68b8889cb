// rss_node's entry point: the operator subcommands (status, get), or the daemon itself.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "rss_node/node_client.h"
#include "rss_node/node_config.h"
#include "rss_node/node_server.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_stop_signal(int) {
    g_stop = 1;
}

constexpr int kCommandTimeoutMs = 3000;

const char kUsage[] =
    "usage: rss_node --name NAME --updates ENDPOINT --queries ENDPOINT [--peer ENDPOINT]...\n"
    "                [--replicas N] [--max-memory SIZE] [--log-level LEVEL] [--config FILE]\n"
    "                [--check-config]\n"
    "       rss_node status ENDPOINT\n"
    "       rss_node get ENDPOINT SESSION-ID\n"
    "See docs/rss_node.md.\n";

void install_signal_handlers() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    // No SA_RESTART: zmq_poll returns EINTR and the loop sees the flag at once.
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
}

}  // namespace

int main(int argc, char **argv) {
    using namespace rhythm::node;
    if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (argc >= 2 && std::strcmp(argv[1], "status") == 0) {
        if (argc != 3) {
            std::fputs(kUsage, stderr);
            return kExitError;
        }
        return run_status_command(argv[2], kCommandTimeoutMs);
    }
    if (argc >= 2 && std::strcmp(argv[1], "get") == 0) {
        if (argc != 4) {
            std::fputs(kUsage, stderr);
            return kExitError;
        }
        return run_get_command(argv[2], argv[3], kCommandTimeoutMs);
    }
    NodeConfig config;
    std::string error;
    if (!parse_node_command_line(argc - 1, argv + 1, &config, &error)) {
        std::fprintf(stderr, "rss_node: %s\n", error.c_str());
        return 1;
    }
    if (config.check_config) {
        std::printf("rss_node: configuration OK (name %s, updates %s, queries %s, %zu peer(s))\n",
                    config.name.c_str(), config.updates.c_str(), config.queries.c_str(),
                    config.peers.size());
        return 0;
    }
    set_log_level(config.log_level);
    install_signal_handlers();
    NodeServer server(config);
    if (!server.start(&error)) {
        RSS_LOG(LogLevel::kError, "%s", error.c_str());
        return 1;
    }
    server.run(&g_stop);
    return 0;
}
