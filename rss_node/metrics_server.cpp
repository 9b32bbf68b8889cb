#include "rss_node/metrics_server.h"

#include <arpa/inet.h>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/clock.h"

namespace rhythm::node {
namespace {

constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

MHD_Result answer(void *context, MHD_Connection *connection, const char *url, const char *method,
                  const char *, const char *, size_t *, void **) {
    auto *server = static_cast<MetricsServer *>(context);
    bool get = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
               std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    unsigned status = MHD_HTTP_OK;
    std::string body;
    if (std::strcmp(url, "/metrics") != 0) {
        status = MHD_HTTP_NOT_FOUND;
        body = "rss_node serves /metrics only\n";
    } else if (!get) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        body = "GET or HEAD\n";
    } else {
        body = server->page();
    }
    MHD_Response *response =
        MHD_create_response_from_buffer(body.size(), body.data(), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) {
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                            status == MHD_HTTP_OK ? kContentType : "text/plain");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

// libmicrohttpd's own messages, one line each.
void log_from_libmicrohttpd(void *context, const char *format, va_list args) {
    char text[256];
    std::vsnprintf(text, sizeof text, format, args);
    std::size_t n = std::strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r')) {
        text[--n] = '\0';
    }
    static_cast<MetricsServer *>(context)->log_message(text);
}

// "HOST:PORT" as a socket address: an IPv4 address, or an IPv6 one in brackets.
bool parse_address(const std::string &text, sockaddr_storage *out, std::string *error) {
    std::size_t colon = text.rfind(':');
    std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
    std::string port_text = colon == std::string::npos ? "" : text.substr(colon + 1);
    char *end = nullptr;
    unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
    if (host.empty() || port_text.empty() || *end != '\0' || port > 65535) {
        *error = "'" + text + "' is not ADDRESS:PORT (an IP address and a port from 0 to 65535)";
        return false;
    }
    std::memset(out, 0, sizeof *out);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        auto *in6 = reinterpret_cast<sockaddr_in6 *>(out);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<std::uint16_t>(port));
        if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &in6->sin6_addr) == 1) {
            return true;
        }
    } else {
        auto *in = reinterpret_cast<sockaddr_in *>(out);
        in->sin_family = AF_INET;
        in->sin_port = htons(static_cast<std::uint16_t>(port));
        if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
            return true;
        }
    }
    *error = "'" + text + "' has no IP address before its port (0.0.0.0, 127.0.0.1 or [::1])";
    return false;
}

}  // namespace

bool check_metrics_address(const std::string &text, std::string *error) {
    sockaddr_storage address;
    return parse_address(text, &address, error);
}

MetricsServer::~MetricsServer() {
    if (daemon_ != nullptr) {
        MHD_stop_daemon(daemon_);
    }
}

bool MetricsServer::start(const std::string &text, std::string *error) {
    sockaddr_storage address;
    if (!parse_address(text, &address, error)) {
        return false;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (address.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    daemon_ = MHD_start_daemon(
        flags, 0, nullptr, nullptr, &answer, this,
        // First, or libmicrohttpd says so on stderr.
        MHD_OPTION_EXTERNAL_LOGGER, &log_from_libmicrohttpd, this, MHD_OPTION_SOCK_ADDR,
        reinterpret_cast<sockaddr *>(&address), MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, kMaxConnectionsPerAddress,
        MHD_OPTION_CONNECTION_TIMEOUT, kTimeoutS, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        static_cast<size_t>(64 * 1024), MHD_OPTION_END);
    if (daemon_ == nullptr) {
        *error = "cannot listen on " + text + " for metrics: " + std::strerror(errno);
        return false;
    }
    const MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port_ = info != nullptr ? info->port : 0;
    return true;
}

void MetricsServer::publish(std::string text) {
    std::lock_guard<std::mutex> lock(mutex_);
    page_ = std::move(text);
}

void MetricsServer::log_message(const char *text) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t suppressed = 0;
    {
        // Its thread, and the node's while it starts.
        std::lock_guard<std::mutex> lock(log_mutex_);
        if (!log_.admit(MonotonicTime::now().ms(), &suppressed)) {
            return;
        }
    }
    RSS_LOG(LogLevel::kWarn, "RN0405: metrics: %s (%llu such lines held back since the last)", text,
            static_cast<unsigned long long>(suppressed));
}

std::string MetricsServer::page() {
    std::lock_guard<std::mutex> lock(mutex_);
    return page_;
}

}  // namespace rhythm::node
