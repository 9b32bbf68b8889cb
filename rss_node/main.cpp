// rss_node's entry point: the operator subcommands (status, get, keygen), or the daemon itself.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "rss_node/node_client.h"
#include "rss_node/node_config.h"
#include "rss_node/node_server.h"
#include "rss_node/session_ending.h"
#include "rss_node/zap_handler.h"
#include "wire/curve.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_reload = 0;

void on_stop_signal(int) {
    g_stop = 1;
}

void on_reload_signal(int) {
    g_reload = 1;
}

constexpr int kCommandTimeoutMs = 3000;

const char kUsage[] =
    "usage: rss_node --name NAME --updates ENDPOINT --queries ENDPOINT [--peer ENDPOINT]...\n"
    "                [--replicas N] [--max-memory SIZE] [--log-level LEVEL] [--config FILE]\n"
    "                [--max-connections N] [--max-connections-per-address N] [--ipc-mode MODE]\n"
    "                [--max-session-lifetime DURATION] [--handover-wait DURATION]\n"
    "                [--metrics ADDRESS:PORT]\n"
    "                [--curve-secret FILE --curve-clients FILE] [--check-config]\n"
    "       rss_node status ENDPOINT [--curve-server FILE --curve-secret FILE]\n"
    "       rss_node get ENDPOINT SESSION-ID [--curve-server FILE --curve-secret FILE]\n"
    "       rss_node end-session SESSION-ID|--all ENDPOINT... [--curve-server FILE --curve-secret "
    "FILE]\n"
    "       rss_node keygen PATH     (writes PATH.key and PATH.pub)\n"
    "See rss_node(1), docs/rss_node.md and docs/security.md.\n";

void install_signal_handlers() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    // No SA_RESTART: zmq_poll returns EINTR and the loop sees the flag at once.
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sa.sa_handler = on_reload_signal;
    sigaction(SIGHUP, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
}

// The arguments of `status`, `get` and `end-session`: `want` positional ones (at least that many
// where `or_more`), the optional CURVE files, and `--all` where `all` is given. False (having
// said why) on a usage error or an unreadable key.
bool parse_operator_arguments(int argc, char **argv, std::size_t want, bool or_more,
                              std::vector<std::string> *positional,
                              rhythm::wire::CurveClientKeys *keys, bool *all = nullptr) {
    std::string server_file;
    std::string secret_file;
    for (int i = 0; i < argc; ++i) {
        std::string arg = argv[i];
        std::string *file = arg == "--curve-server"   ? &server_file
                            : arg == "--curve-secret" ? &secret_file
                                                      : nullptr;
        if (file != nullptr) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "rss_node: %s needs a file\n", arg.c_str());
                return false;
            }
            *file = argv[++i];
        } else if (all != nullptr && arg == "--all") {
            *all = true;
        } else if (arg.rfind("--", 0) == 0) {
            std::fprintf(stderr, "rss_node: unknown option '%s'\n%s", arg.c_str(), kUsage);
            return false;
        } else {
            positional->push_back(arg);
        }
    }
    if (positional->size() < want || (!or_more && positional->size() != want)) {
        std::fputs(kUsage, stderr);
        return false;
    }
    if (server_file.empty() != secret_file.empty()) {
        std::fprintf(stderr, "rss_node: --curve-server and --curve-secret go together\n");
        return false;
    }
    std::string error;
    if (!server_file.empty() &&
        !rhythm::wire::load_client_keys(server_file, secret_file, keys, &error)) {
        std::fprintf(stderr, "rss_node: %s\n", error.c_str());
        return false;
    }
    return true;
}

}  // namespace

int main(int argc, char **argv) {
    using namespace rhythm::node;
    if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    std::vector<std::string> args;
    rhythm::wire::CurveClientKeys keys;
    if (argc >= 2 && std::strcmp(argv[1], "status") == 0) {
        if (!parse_operator_arguments(argc - 2, argv + 2, 1, false, &args, &keys)) {
            return kExitError;
        }
        return run_status_command(args[0], keys, kCommandTimeoutMs);
    }
    if (argc >= 2 && std::strcmp(argv[1], "get") == 0) {
        if (!parse_operator_arguments(argc - 2, argv + 2, 2, false, &args, &keys)) {
            return kExitError;
        }
        return run_get_command(args[0], args[1], keys, kCommandTimeoutMs);
    }
    if (argc >= 2 && std::strcmp(argv[1], "end-session") == 0) {
        bool all = false;
        if (!parse_operator_arguments(argc - 2, argv + 2, 1, true, &args, &keys, &all)) {
            return kExitError;
        }
        rhythm::wire::EndSession target{0, rhythm::wire::EndScope::kAll, {}};
        if (!all) {
            if (args.size() < 2 || !parse_end_session_target(args[0], &target)) {
                std::fprintf(stderr,
                             "rss_node: end-session needs --all or a session ID (22 characters "
                             "of base64url, or a signed cookie's ID.TAG) before the endpoints; "
                             "got '%s'\n",
                             args[0].c_str());
                return kExitError;
            }
            args.erase(args.begin());
        }
        return run_end_session_command(target, args, keys, kCommandTimeoutMs);
    }
    if (argc >= 2 && std::strcmp(argv[1], "keygen") == 0) {
        std::string error;
        if (argc != 3) {
            std::fputs(kUsage, stderr);
            return kExitError;
        }
        if (!rhythm::wire::write_key_pair(argv[2], &error)) {
            std::fprintf(stderr, "rss_node: %s\n", error.c_str());
            return kExitError;
        }
        std::printf("rss_node: wrote %s.key (secret, mode 0600) and %s.pub\n", argv[2], argv[2]);
        return 0;
    }
    NodeConfig config;
    std::string error;
    if (!parse_node_command_line(argc - 1, argv + 1, &config, &error)) {
        std::fprintf(stderr, "rss_node: %s\n", error.c_str());
        return 1;
    }
    if (config.check_config) {
        NodeKeys keys;
        if (!load_node_keys(config, &keys, &error)) {
            std::fprintf(stderr, "rss_node: %s\n", error.c_str());
            return 1;
        }
        std::printf("rss_node: configuration OK (name %s, updates %s, queries %s, %zu peer(s))\n",
                    config.name.c_str(), config.updates.c_str(), config.queries.c_str(),
                    config.peers.size());
        return 0;
    }
    set_log_level(config.log_level);
    install_signal_handlers();
    use_node_malloc_settings();
    NodeServer server(config);
    if (!server.start(&error)) {
        RSS_LOG(LogLevel::kError, "RN0103: %s", error.c_str());
        return 1;
    }
    server.run(&g_stop, &g_reload);
    return 0;
}
