// `rss_node status`, `get` and `end-session`: requests over a DEALER, the answers printed.
#include "rss_node/node_client.h"

#include <cstdio>
#include <optional>
#include <zmq.h>

#include "common/clock.h"
#include "common/endpoint.h"
#include "wire/handshake_monitor.h"
#include "wire/messages.h"
#include "wire/zmq_io.h"

namespace rhythm::node {
namespace {

// Sends `request` and waits for the reply carrying `request_id`; prints why on failure (a
// malformed endpoint included). `handle` gets the decoded reply and returns the exit code.
template <typename Handler>
int ask(const std::string &endpoint, const wire::CurveClientKeys &keys,
        const wire::Message &request, std::uint64_t request_id, int timeout_ms, Handler handle) {
    std::string why;
    if (!check_endpoint(endpoint, EndpointUse::kConnect, &why)) {
        std::fprintf(stderr, "rss_node: %s\n", why.c_str());
        return kExitError;
    }
    void *context = zmq_ctx_new();
    void *socket = zmq_socket(context, ZMQ_DEALER);
    int code = kExitError;
    std::string error;
    wire::HandshakeMonitor handshakes;
    if (!handshakes.attach(context, socket, false, keys.enabled(),
                           "--curve-server and --curve-secret", &error)) {
        std::fprintf(stderr, "rss_node: %s\n", error.c_str());
    } else if (!wire::set_network_options(socket) ||
               (keys.enabled() && !wire::make_curve_client(socket, keys)) ||
               zmq_connect(socket, endpoint.c_str()) != 0) {
        std::fprintf(stderr, "rss_node: cannot connect to %s: %s\n", endpoint.c_str(),
                     zmq_strerror(zmq_errno()));
    } else if (!wire::send_frames(socket, nullptr, wire::encode_message(request), 0)) {
        std::fprintf(stderr, "rss_node: cannot send to %s: %s\n", endpoint.c_str(),
                     zmq_strerror(zmq_errno()));
    } else {
        MonotonicTime deadline = MonotonicTime::now() + std::chrono::milliseconds(timeout_ms);
        bool answered = false;
        while (!answered) {
            std::int64_t left = (deadline - MonotonicTime::now()) / std::chrono::milliseconds(1);
            zmq_pollitem_t items[] = {{socket, 0, ZMQ_POLLIN, 0},
                                      {handshakes.events(), 0, ZMQ_POLLIN, 0}};
            if (left <= 0 || zmq_poll(items, 2, static_cast<long>(left)) <= 0) {
                std::fprintf(stderr, "rss_node: no answer from %s within %d ms\n", endpoint.c_str(),
                             timeout_ms);
                break;
            }
            std::string refusal;
            if (handshakes.next(MonotonicTime::now(), &refusal) && !refusal.empty()) {
                // libzmq would retry for ever: a refused handshake is the answer.
                std::fprintf(stderr, "rss_node: %s\n", refusal.c_str());
                break;
            }
            wire::ReceivedMessage message;
            if (!message.receive(socket, ZMQ_DONTWAIT)) {
                continue;
            }
            wire::Message reply;
            wire::DecodeResult result =
                wire::decode_message(wire::FrameSpan(message.frames(), message.size()), &reply);
            if (!result.ok()) {
                std::fprintf(stderr, "rss_node: malformed answer from %s: %s\n", endpoint.c_str(),
                             result.message);
                answered = true;
            } else if (auto *error = std::get_if<wire::ErrorReply>(&reply)) {
                std::fprintf(stderr, "rss_node: %s answered with an error: %.*s\n",
                             endpoint.c_str(), static_cast<int>(error->text.size()),
                             error->text.data());
                answered = true;
            } else {
                std::optional<int> handled = handle(reply, request_id);
                if (handled) {
                    code = *handled;
                    answered = true;
                }
            }
        }
    }
    handshakes.close();
    zmq_close(socket);
    zmq_ctx_term(context);
    return code;
}

std::uint64_t new_request_id() {
    return static_cast<std::uint64_t>(MonotonicTime::now().us());
}

}  // namespace

int run_status_command(const std::string &endpoint, const wire::CurveClientKeys &keys,
                       int timeout_ms) {
    std::uint64_t id = new_request_id();
    return ask(endpoint, keys, wire::StatusRequest{id}, id, timeout_ms,
               [](const wire::Message &reply, std::uint64_t want) -> std::optional<int> {
                   auto *status = std::get_if<wire::StatusReply>(&reply);
                   if (status == nullptr || status->request_id != want) {
                       return std::nullopt;
                   }
                   std::fwrite(status->json.data(), 1, status->json.size(), stdout);
                   std::fputc('\n', stdout);
                   return kExitFound;
               });
}

int run_get_command(const std::string &endpoint, const std::string &session_id,
                    const wire::CurveClientKeys &keys, int timeout_ms) {
    wire::SessionKey key;
    if (!wire::parse_session_key(session_id, &key)) {
        std::fprintf(stderr, "rss_node: '%s' is not a session ID (22 characters of base64url)\n",
                     session_id.c_str());
        return kExitError;
    }
    std::uint64_t id = new_request_id();
    return ask(
        endpoint, keys, wire::Fetch{id, key}, id, timeout_ms,
        [&](const wire::Message &reply, std::uint64_t want) -> std::optional<int> {
            auto *answer = std::get_if<wire::FetchReply>(&reply);
            if (answer == nullptr || answer->request_id != want) {
                return std::nullopt;
            }
            const char *state = answer->status == wire::FetchStatus::kFound     ? "found"
                                : answer->status == wire::FetchStatus::kDeleted ? "deleted"
                                                                                : "not-found";
            // A former owner's copy gets no updates; a provisional owner's may be behind.
            const char *owner = !answer->owner ? "no" : answer->provisional ? "provisional" : "yes";
            std::printf("session: %s\nshard: %u\nowner: %s\nstate: %s\n", session_id.c_str(),
                        wire::shard_of(key), owner, state);
            if (answer->status == wire::FetchStatus::kNotFound) {
                return kExitNotFound;
            }
            const auto &r = answer->record;
            std::printf("version: %llu\norigin: %.*s\nexpires_at_ms: %llu\nsize: %zu\n",
                        static_cast<unsigned long long>(r.version),
                        static_cast<int>(r.origin.size()), r.origin.data(),
                        static_cast<unsigned long long>(r.expires_at_ms), r.data.size());
            if (answer->status == wire::FetchStatus::kDeleted) {
                return kExitNotFound;
            }
            std::printf("\n");
            std::fwrite(r.data.data(), 1, r.data.size(), stdout);
            std::fputc('\n', stdout);
            return kExitFound;
        });
}

int run_end_session_command(const wire::EndSession &target,
                            const std::vector<std::string> &endpoints,
                            const wire::CurveClientKeys &keys, int timeout_ms) {
    bool all = target.scope == wire::EndScope::kAll;
    std::size_t ended = 0, refused = 0, unanswered = 0;
    for (const std::string &endpoint : endpoints) {
        wire::EndSession request = target;
        request.request_id = new_request_id();
        int code = ask(endpoint, keys, request, request.request_id, timeout_ms,
                       [&](const wire::Message &reply, std::uint64_t want) -> std::optional<int> {
                           auto *answer = std::get_if<wire::EndSessionReply>(&reply);
                           if (answer == nullptr || answer->request_id != want) {
                               return std::nullopt;
                           }
                           unsigned long long count = answer->count;
                           switch (answer->outcome) {
                               case wire::EndSessionOutcome::kEnded:
                                   ++ended;
                                   std::printf("%s: ended (%llu tombstone(s) stored)\n",
                                               endpoint.c_str(), count);
                                   break;
                               case wire::EndSessionOutcome::kNotOwner:
                                   std::printf("%s: owns no shard of it\n", endpoint.c_str());
                                   break;
                               case wire::EndSessionOutcome::kRefused:
                                   ++refused;
                                   std::printf("%s: REFUSED: the node is full (%llu ended)\n",
                                               endpoint.c_str(), count);
                                   break;
                           }
                           return kExitFound;
                       });
        if (code != kExitFound) {
            ++unanswered;
        }
    }
    if (unanswered > 0 || refused > 0) {
        std::fprintf(stderr,
                     "rss_node: %zu node(s) did not answer and %zu could not store it: run the "
                     "command again once they can (until then they hold what they held)\n",
                     unanswered, refused);
        return kExitError;
    }
    if (ended == 0 && !all) {
        std::fprintf(stderr,
                     "rss_node: no node given owns the session's shard: give every node of the "
                     "bank\n");
        return kExitError;
    }
    return kExitFound;
}

}  // namespace rhythm::node
