// The ZAP handler (see zap_handler.h).
#include "rss_node/zap_handler.h"

#include <cstring>
#include <vector>
#include <zmq.h>

#include "wire/curve.h"
#include "wire/zmq_io.h"

namespace rhythm::node {
namespace {

// A ZAP request has 6 frames and one credential for CURVE; libzmq sends nothing larger.
constexpr std::size_t kMaxRequestFrames = 8;
constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";

bool send_reply(void *socket, const std::string &request_id, const char *status,
                const std::string &text, const std::string &user_id) {
    const std::string frames[] = {"1.0", request_id, status, text, user_id, ""};
    constexpr std::size_t count = sizeof frames / sizeof frames[0];
    for (std::size_t i = 0; i < count; ++i) {
        if (zmq_send(socket, frames[i].data(), frames[i].size(), i + 1 < count ? ZMQ_SNDMORE : 0) <
            0) {
            return false;
        }
    }
    return true;
}

}  // namespace

bool load_node_keys(const NodeConfig &config, NodeKeys *keys, std::string *error) {
    if (config.curve_secret.empty()) {
        *keys = NodeKeys{};
        return true;
    }
    NodeKeys loaded;
    if (!wire::read_secret_key_file(config.curve_secret, &loaded.secret, error) ||
        !wire::read_client_keys(config.curve_clients, &loaded.clients, error)) {
        return false;
    }
    if (!wire::public_key_of(loaded.secret, &loaded.public_key)) {
        *error = config.curve_secret + ": not a usable secret key";
        return false;
    }
    *keys = std::move(loaded);
    return true;
}

ZapHandler::~ZapHandler() {
    close();
}

void ZapHandler::close() {
    if (socket_ != nullptr) {
        zmq_close(socket_);
        socket_ = nullptr;
        fd_ = -1;
    }
}

bool ZapHandler::start(void *context, const NodeKeys &keys, std::string clients_file,
                       std::string *error) {
    clients_file_ = std::move(clients_file);
    clients_ = keys.clients;
    wire::decode_curve_key(keys.public_key, &bank_public_);
    socket_ = zmq_socket(context, ZMQ_REP);
    int linger = 0;
    if (socket_ == nullptr || zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(socket_, kZapEndpoint) != 0 || (fd_ = wire::pollable_descriptor(socket_)) < 0) {
        *error = std::string("cannot start the ZAP handler: ") + zmq_strerror(zmq_errno());
        return false;
    }
    return true;
}

void ZapHandler::answer(std::uint64_t now_mono_ms) {
    while (socket_ != nullptr) {
        std::vector<std::string> frames;
        bool more = true;
        while (more) {
            zmq_msg_t part;
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, socket_, frames.empty() ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(&part);
                return;
            }
            more = zmq_msg_more(&part) != 0;
            if (frames.size() < kMaxRequestFrames) {
                frames.emplace_back(static_cast<const char *>(zmq_msg_data(&part)),
                                    zmq_msg_size(&part));
            }
            zmq_msg_close(&part);
        }
        // version, request id, domain, address, routing id, mechanism, credentials...
        const std::string request_id = frames.size() > 1 ? frames[1] : "";
        const std::string address = frames.size() > 3 ? frames[3] : "";
        std::string why;
        if (frames.size() < 6 || frames[0] != "1.0") {
            why = "malformed ZAP request";
        } else if (frames[2] != wire::kZapDomain) {
            why = "ZAP domain '" + frames[2] + "' is not " + wire::kZapDomain;
        } else if (frames[5] != "CURVE" || frames.size() != 7 ||
                   frames[6].size() != wire::kCurveKeyBytes) {
            why = "mechanism " + frames[5] + " is not CURVE";
        } else if (frames[6] != bank_public_ && clients_.count(frames[6]) == 0) {
            char key[wire::kCurveKeyText + 1];
            zmq_z85_encode(key, reinterpret_cast<const std::uint8_t *>(frames[6].data()),
                           frames[6].size());
            why = std::string("key ") + key + " is not listed in " + clients_file_;
        }
        if (why.empty()) {
            admitted_++;
            char user[wire::kCurveKeyText + 1];
            zmq_z85_encode(user, reinterpret_cast<const std::uint8_t *>(frames[6].data()),
                           frames[6].size());
            send_reply(socket_, request_id, "200", "OK", user);
            continue;
        }
        refused_++;
        std::uint64_t suppressed = 0;
        if (refusal_log_.admit(now_mono_ms, &suppressed)) {
            RSS_LOG(LogLevel::kWarn,
                    "RN0404: refused a CURVE client from %s: %s; %llu more refused since the last "
                    "such line, "
                    "%llu in all",
                    address.c_str(), why.c_str(), static_cast<unsigned long long>(suppressed),
                    static_cast<unsigned long long>(refused_));
        }
        send_reply(socket_, request_id, "400", why, "");
    }
}

bool ZapHandler::reload(std::string *error) {
    std::set<std::string> keys;
    if (!wire::read_client_keys(clients_file_, &keys, error)) {
        return false;
    }
    clients_ = std::move(keys);
    return true;
}

}  // namespace rhythm::node
