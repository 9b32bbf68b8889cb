// Contracts checked on every accepted input:
// - a session ID is the canonical text of its 16 bytes (parsing then formatting gives it back);
// - a cookie value that verifies under the signing key is the value that key gives its ID, a plain
//   ID that is refused as unsigned is one, and nothing verifies as signed by an older key;
// - a cookie name is a token, its attributes hold no control character, the TLS form says
//   Secure, a __Host-/__Secure- cookie says Secure on plain HTTP too, a __Host- cookie has
//   path=/ and no Domain, and giving the result back to the parser yields the same cookie;
// - a size, duration or count lies within the range asked for;
// - an endpoint to connect to is one to bind as well (binding only adds the wildcards), but an
//   abstract ipc name, which a node does not bind;
// - a name has 1 to 255 bytes, each printable ASCII other than the space;
// - a refusal always says why (each parser starts with an empty reason).
#include "fuzz/session_cookie_input.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/endpoint.h"
#include "common/name.h"
#include "common/number.h"
#include "common/size.h"
#include "core/config_value.h"
#include "core/id_signer.h"
#include "core/session_cookie.h"
#include "wire/session_key.h"

namespace rhythm {
namespace {

void require(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "session_cookie fuzz target: %s\n", what);
        std::abort();
    }
}

bool says_secure(const std::string &attributes) {
    SessionCookie probe;
    std::string why;
    // Reparsed as a plain cookie's attributes: the TLS form adds nothing when Secure is there.
    return parse_session_cookie("probe " + attributes, &probe, &why) &&
           probe.tls_attributes == attributes;
}

bool session_id(std::string_view text) {
    wire::SessionKey key;
    if (!wire::parse_session_key(text, &key)) {
        return false;
    }
    require(wire::format_session_key(key) == text, "a parsed session ID formats differently");
    return true;
}

bool signed_id(std::string_view text) {
    static const IdSigner signer = [] {
        IdSigner s;
        std::string why;
        require(s.parse(kFuzzIdKey, "fuzz", &why), "the fuzz key refused");
        return s;
    }();
    SessionId id;
    IdSigner::Verdict verdict = signer.verify(text, &id);
    require(verdict != IdSigner::Verdict::kOlderKey, "an older key where there is one key");
    if (verdict == IdSigner::Verdict::kUnsigned) {
        require(wire::format_session_key(id) == text, "an unsigned ID that is not one");
    }
    if (verdict != IdSigner::Verdict::kValid) {
        return false;
    }
    require(signer.cookie_value(id) == text, "a valid signed ID the key signs differently");
    return true;
}

bool cookie(std::string_view text) {
    SessionCookie parsed;
    std::string why;
    if (!parse_session_cookie(text, &parsed, &why)) {
        require(!why.empty(), "a refused cookie without a reason");
        return false;
    }
    require(is_cookie_token(parsed.name), "a cookie name that is not a token");
    for (char c : parsed.tls_attributes) {
        unsigned char u = static_cast<unsigned char>(c);
        require((u >= 32 && u != 127) || c == '\t', "a control character in the attributes");
    }
    require(says_secure(parsed.tls_attributes), "TLS attributes without Secure");
    CookiePrefix prefix = cookie_prefix(parsed.name);
    if (prefix != CookiePrefix::kNone) {
        require(parsed.attributes == parsed.tls_attributes, "a prefixed cookie without Secure");
    }
    SessionCookie again;
    require(parse_session_cookie(parsed.name + " " + parsed.attributes, &again, &why),
            "the parser refuses its own result");
    require(again.name == parsed.name && again.attributes == parsed.attributes &&
                again.tls_attributes == parsed.tls_attributes,
            "the parser changes its own result");
    if (prefix == CookiePrefix::kHost) {
        SessionCookie with_domain;
        require(!parse_session_cookie(parsed.name + " " + parsed.attributes + ";Domain=x",
                                      &with_domain, &why),
                "a __Host- cookie accepted with a Domain");
    }
    return true;
}

unsigned values(std::string_view text) {
    unsigned accepted = 0;
    std::string why;
    std::uint64_t v = 0;
    if (parse_size(text, 128, 16ULL << 20, &v, &why)) {
        require(v >= 128 && v <= (16ULL << 20), "a size out of range");
        accepted |= kFuzzSize;
    } else {
        require(!why.empty(), "a refused size without a reason");
    }
    why.clear();
    if (parse_duration_ms(text, 1, 3600 * 1000, &v, &why)) {
        require(v >= 1 && v <= 3600 * 1000, "a duration out of range");
        accepted |= kFuzzDuration;
    } else {
        require(!why.empty(), "a refused duration without a reason");
    }
    why.clear();
    if (parse_idle_timeout_s(text, 86400, &v, &why)) {
        require(v <= 86400, "an idle timeout out of range");
        accepted |= kFuzzIdleTimeout;
    } else {
        require(!why.empty(), "a refused idle timeout without a reason");
    }
    why.clear();
    if (parse_count(text, 0, 19, &v, &why)) {
        require(v <= 19, "a count out of range");
        accepted |= kFuzzCount;
    } else {
        require(!why.empty(), "a refused count without a reason");
    }
    why.clear();
    if (check_endpoint(text, EndpointUse::kConnect, &why)) {
        // Every endpoint to connect to binds too, but an abstract ipc name (ipc://@NAME): it has
        // no file mode to say who may connect to a node (endpoint.h).
        bool abstract_ipc = text.rfind("ipc://@", 0) == 0;
        require(check_endpoint(text, EndpointUse::kBind, &why) != abstract_ipc,
                "an endpoint to connect to refused as one to bind, or an abstract ipc name bound");
        accepted |= kFuzzEndpoint;
    } else {
        require(!why.empty(), "a refused endpoint without a reason");
    }
    why.clear();
    if (check_name(text, &why)) {
        require(!text.empty() && text.size() <= 255, "a name of the wrong length");
        for (char c : text) {
            require(c >= 0x21 && c <= 0x7e, "a name with a space or an unprintable byte");
        }
        accepted |= kFuzzName;
    } else {
        require(!why.empty(), "a refused name without a reason");
    }
    return accepted;
}

}  // namespace

unsigned fuzz_session_cookie_input(const std::uint8_t *data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char *>(data), size);
    unsigned accepted = values(text);
    if (session_id(text)) {
        accepted |= kFuzzSessionId;
    }
    if (cookie(text)) {
        accepted |= kFuzzCookie;
    }
    if (signed_id(text)) {
        accepted |= kFuzzSignedId;
    }
    return accepted;
}

}  // namespace rhythm
