// The login keys of an encoded session (see login_identity.h).
#include "core/login_identity.h"

#include <algorithm>
#include <vector>

#include "common/number.h"

namespace rhythm {

namespace {

// A key as mod_session's identity decoding reads it ('+' a space, %XX a byte); a malformed
// escape stays as it is.
std::string url_decoded(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        int high = text[i] == '%' && i + 2 < text.size() ? hex_digit_value(text[i + 1]) : -1;
        int low = high >= 0 ? hex_digit_value(text[i + 2]) : -1;
        if (low >= 0) {
            out.push_back(static_cast<char>(high * 16 + low));
            i += 2;
        } else {
            out.push_back(text[i] == '+' ? ' ' : text[i]);
        }
    }
    return out;
}

bool is_login_key(std::string_view key, std::string_view login_key) {
    if (!login_key.empty()) {
        return key == login_key;
    }
    constexpr std::string_view kUser = "user";
    constexpr std::string_view kRealmUser = "-user";
    return key == kUser || (key.size() > kRealmUser.size() &&
                            key.substr(key.size() - kRealmUser.size()) == kRealmUser);
}

}  // namespace

std::string login_identity(std::string_view encoded, std::string_view login_key) {
    std::vector<std::string_view> logins;
    while (!encoded.empty()) {
        std::size_t end = encoded.find('&');
        std::string_view pair = encoded.substr(0, end);
        encoded = end == std::string_view::npos ? std::string_view() : encoded.substr(end + 1);
        std::size_t equals = pair.find('=');
        if (equals == std::string_view::npos || equals + 1 == pair.size()) {
            continue;  // no value: not a login
        }
        if (is_login_key(url_decoded(pair.substr(0, equals)), login_key)) {
            logins.push_back(pair);
        }
    }
    std::sort(logins.begin(), logins.end());
    std::string identity;
    for (std::string_view pair : logins) {
        identity.append(identity.empty() ? "" : "&").append(pair);
    }
    return identity;
}

}  // namespace rhythm
