// The session cookie's name and attributes: checked at configuration time, Secure added where
// browsers require it.
#include "session_cookie.h"

#include <cstring>
#include <utility>

namespace rhythm {
namespace {

constexpr std::string_view kBlanks = " \t";

std::string_view trim(std::string_view text) {
    std::size_t first = text.find_first_not_of(kBlanks);
    if (first == std::string_view::npos) {
        return {};
    }
    std::size_t last = text.find_last_not_of(kBlanks);
    return text.substr(first, last - first + 1);
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
        char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
        if (x != y) {
            return false;
        }
    }
    return true;
}

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() &&
           equals_ignoring_case(text.substr(0, prefix.size()), prefix);
}

// What the attributes say about the three that the prefixes care about.
struct AttributeSummary {
    bool secure = false;
    bool domain = false;
    bool path_is_root = false;
    std::string_view other_path;  // the first Path that is not "/"
};

AttributeSummary summarize(std::string_view attributes) {
    AttributeSummary summary;
    while (!attributes.empty()) {
        std::size_t end = attributes.find(';');
        std::string_view attribute = attributes.substr(0, end);
        attributes =
            end == std::string_view::npos ? std::string_view() : attributes.substr(end + 1);
        std::size_t equals = attribute.find('=');
        std::string_view name = trim(attribute.substr(0, equals));
        std::string_view value = equals == std::string_view::npos
                                     ? std::string_view()
                                     : trim(attribute.substr(equals + 1));
        if (equals_ignoring_case(name, "secure")) {
            summary.secure = true;
        } else if (equals_ignoring_case(name, "domain")) {
            summary.domain = true;
        } else if (equals_ignoring_case(name, "path")) {
            if (value == "/") {
                summary.path_is_root = true;
            } else if (summary.other_path.empty()) {
                summary.other_path = value.empty() ? std::string_view("(empty)") : value;
            }
        }
    }
    return summary;
}

std::string with_secure(std::string_view attributes) {
    return attributes.empty() ? std::string("Secure") : std::string(attributes) + ";Secure";
}

}  // namespace

const SessionCookie &default_session_cookie() {
    static const SessionCookie cookie{"rhythm_session", "path=/;HttpOnly;SameSite=Lax",
                                      "path=/;HttpOnly;SameSite=Lax;Secure"};
    return cookie;
}

bool is_cookie_token(std::string_view text) {
    if (text.empty()) {
        return false;
    }
    for (char ch : text) {
        unsigned char c = static_cast<unsigned char>(ch);
        if (c <= 32 || c >= 127 || std::strchr("()<>@,;:\\\"/[]?={}", c)) {
            return false;
        }
    }
    return true;
}

CookiePrefix cookie_prefix(std::string_view name) {
    if (starts_with_ignoring_case(name, "__Host-")) {
        return CookiePrefix::kHost;
    }
    if (starts_with_ignoring_case(name, "__Secure-")) {
        return CookiePrefix::kSecure;
    }
    return CookiePrefix::kNone;
}

bool parse_session_cookie(std::string_view arguments, SessionCookie *cookie, std::string *why) {
    arguments = trim(arguments);
    std::size_t blank = arguments.find_first_of(kBlanks);
    std::string_view name = arguments.substr(0, blank);
    std::string_view given =
        blank == std::string_view::npos ? std::string_view() : trim(arguments.substr(blank));
    if (!is_cookie_token(name)) {
        *why = "'" + std::string(name) +
               "' is not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~ only)";
        return false;
    }
    for (char ch : given) {
        unsigned char c = static_cast<unsigned char>(ch);
        if ((c < 32 && c != '\t') || c == 127) {
            *why = "the cookie attributes contain a control character";
            return false;
        }
    }
    std::string_view attributes = given.empty() ? default_session_cookie().attributes : given;
    AttributeSummary summary = summarize(attributes);
    CookiePrefix prefix = cookie_prefix(name);
    if (prefix == CookiePrefix::kHost && summary.domain) {
        *why = "the " + std::string(name) +
               " cookie has a Domain attribute, which browsers refuse for a __Host- cookie";
        return false;
    }
    if (prefix == CookiePrefix::kHost && !summary.other_path.empty()) {
        *why = "the " + std::string(name) + " cookie has path=" + std::string(summary.other_path) +
               ": browsers accept a __Host- cookie only with path=/";
        return false;
    }
    if (prefix == CookiePrefix::kHost && !summary.path_is_root) {
        *why = "the " + std::string(name) +
               " cookie needs path=/: browsers accept a __Host- cookie only with path=/";
        return false;
    }
    SessionCookie parsed;
    parsed.name = std::string(name);
    parsed.tls_attributes = summary.secure ? std::string(attributes) : with_secure(attributes);
    parsed.attributes =
        prefix == CookiePrefix::kNone ? std::string(attributes) : parsed.tls_attributes;
    *cookie = std::move(parsed);
    return true;
}

}  // namespace rhythm
