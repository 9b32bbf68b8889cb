// The cookie that carries the session ID: its name and the attributes sent with it, checked once
// when RhythmSessionCookieName is read, so that a request only picks the plain or the TLS form.
// Kept free of httpd so that it is unit-tested and fuzzed.
#pragma once

#include <string>
#include <string_view>

namespace rhythm {

struct SessionCookie {
    std::string name;
    std::string attributes;      // sent over plain HTTP
    std::string tls_attributes;  // sent over TLS: the same, with Secure
};

// rhythm_session path=/;HttpOnly;SameSite=Lax (and Secure over TLS).
const SessionCookie &default_session_cookie();

// RFC 6265's token: what a cookie name may be.
bool is_cookie_token(std::string_view text);

enum class CookiePrefix {
    kNone,
    kSecure,  // "__Secure-": the browser keeps it only with Secure
    kHost,    // "__Host-": Secure, Path=/ and no Domain
};

// The name's prefix, compared without regard to case as browsers do.
CookiePrefix cookie_prefix(std::string_view name);

// RhythmSessionCookieName's arguments: a name, then optionally the attributes (the rest of the
// line; without them, the default attributes). A __Secure- or __Host- name gets Secure on plain
// HTTP too, since a browser refuses such a cookie without it. False, with the reason, for a name
// that is not a token, attributes with a control character, or a __Host- cookie with a Domain or
// a Path other than "/".
bool parse_session_cookie(std::string_view arguments, SessionCookie *cookie, std::string *why);

}  // namespace rhythm
