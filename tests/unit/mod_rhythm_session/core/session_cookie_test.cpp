// RhythmSessionCookieName: names, attributes, Secure where browsers require it, and the __Host-
// rules.
#include "core/session_cookie.h"

#include <boost/test/unit_test.hpp>
#include <string>

using rhythm::CookiePrefix;
using rhythm::SessionCookie;

namespace {

SessionCookie parsed(const std::string &arguments) {
    SessionCookie cookie;
    std::string why;
    BOOST_TEST_REQUIRE(rhythm::parse_session_cookie(arguments, &cookie, &why), why);
    return cookie;
}

std::string refusal(const std::string &arguments) {
    SessionCookie cookie;
    std::string why;
    BOOST_TEST(!rhythm::parse_session_cookie(arguments, &cookie, &why), arguments);
    return why;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(session_cookie)

BOOST_AUTO_TEST_CASE(the_default_is_http_only_and_same_site_lax_and_secure_over_tls) {
    const SessionCookie &cookie = rhythm::default_session_cookie();
    BOOST_TEST(cookie.name == "rhythm_session");
    BOOST_TEST(cookie.attributes == "path=/;HttpOnly;SameSite=Lax");
    BOOST_TEST(cookie.tls_attributes == "path=/;HttpOnly;SameSite=Lax;Secure");
}

BOOST_AUTO_TEST_CASE(a_name_alone_gets_the_default_attributes) {
    SessionCookie cookie = parsed("  sid \t");
    BOOST_TEST(cookie.name == "sid");
    BOOST_TEST(cookie.attributes == rhythm::default_session_cookie().attributes);
    BOOST_TEST(cookie.tls_attributes == rhythm::default_session_cookie().tls_attributes);
}

BOOST_AUTO_TEST_CASE(given_attributes_are_kept_and_secure_is_added_over_tls_only) {
    SessionCookie cookie = parsed("sid path=/app;HttpOnly;SameSite=Strict");
    BOOST_TEST(cookie.attributes == "path=/app;HttpOnly;SameSite=Strict");
    BOOST_TEST(cookie.tls_attributes == "path=/app;HttpOnly;SameSite=Strict;Secure");
}

BOOST_AUTO_TEST_CASE(secure_is_not_added_twice) {
    SessionCookie cookie = parsed("sid path=/; secure ;HttpOnly");
    BOOST_TEST(cookie.attributes == "path=/; secure ;HttpOnly");
    BOOST_TEST(cookie.tls_attributes == cookie.attributes);
}

BOOST_AUTO_TEST_CASE(a_path_that_contains_secure_is_no_secure_attribute) {
    SessionCookie cookie = parsed("sid path=/secure;HttpOnly");
    BOOST_TEST(cookie.tls_attributes == "path=/secure;HttpOnly;Secure");
}

BOOST_AUTO_TEST_CASE(prefixes_are_recognised_without_regard_to_case) {
    BOOST_TEST((rhythm::cookie_prefix("__Host-sid") == CookiePrefix::kHost));
    BOOST_TEST((rhythm::cookie_prefix("__host-sid") == CookiePrefix::kHost));
    BOOST_TEST((rhythm::cookie_prefix("__Secure-sid") == CookiePrefix::kSecure));
    BOOST_TEST((rhythm::cookie_prefix("__SECURE-sid") == CookiePrefix::kSecure));
    BOOST_TEST((rhythm::cookie_prefix("__Host") == CookiePrefix::kNone));
    BOOST_TEST((rhythm::cookie_prefix("_Host-sid") == CookiePrefix::kNone));
    BOOST_TEST((rhythm::cookie_prefix("sid__Host-") == CookiePrefix::kNone));
}

BOOST_AUTO_TEST_CASE(prefixed_names_are_secure_over_plain_http_too) {
    SessionCookie host = parsed("__Host-sid");
    BOOST_TEST(host.attributes == "path=/;HttpOnly;SameSite=Lax;Secure");
    BOOST_TEST(host.tls_attributes == host.attributes);
    SessionCookie secure = parsed("__Secure-sid path=/app;HttpOnly");
    BOOST_TEST(secure.attributes == "path=/app;HttpOnly;Secure");
    BOOST_TEST(secure.tls_attributes == secure.attributes);
    SessionCookie already = parsed("__Host-sid Path=/;Secure;HttpOnly");
    BOOST_TEST(already.attributes == "Path=/;Secure;HttpOnly");
}

BOOST_AUTO_TEST_CASE(a_host_cookie_needs_path_root_and_no_domain) {
    BOOST_TEST(refusal("__Host-sid path=/;Domain=example.com")
                   .find("__Host-sid cookie has a Domain attribute") != std::string::npos);
    BOOST_TEST(refusal("__Host-sid path=/app;HttpOnly").find("has path=/app") != std::string::npos);
    BOOST_TEST(refusal("__host-sid PATH = /x").find("has path=/x") != std::string::npos);
    BOOST_TEST(refusal("__Host-sid path=/;path=/app").find("has path=/app") != std::string::npos);
    BOOST_TEST(refusal("__Host-sid path=").find("has path=(empty)") != std::string::npos);
    BOOST_TEST(refusal("__Host-sid HttpOnly;SameSite=Lax").find("needs path=/") !=
               std::string::npos);
    // The rules are the __Host- prefix's; other cookies may have a Domain or any Path.
    parsed("__Secure-sid path=/app;Domain=example.com");
    parsed("sid path=/app;Domain=example.com");
}

BOOST_AUTO_TEST_CASE(names_must_be_tokens) {
    for (const char *bad : {"", "a=b", "a;b", "s\x01id", "caf\xc3\xa9", "(sid)", "a/b", "a,b"}) {
        BOOST_TEST(refusal(bad).find("is not a valid cookie name") != std::string::npos, bad);
    }
    parsed("!#$%&'*+-.^_`|~09azAZ");
}

BOOST_AUTO_TEST_CASE(attributes_must_not_contain_control_characters) {
    BOOST_TEST(refusal("sid path=/\r\nX-Injected: 1").find("control character") !=
               std::string::npos);
    BOOST_TEST(refusal(std::string("sid path=/\0x", 12)).find("control character") !=
               std::string::npos);
    BOOST_TEST(refusal("sid path=/;\x7f").find("control character") != std::string::npos);
    parsed("sid path=/;\tHttpOnly");
}

BOOST_AUTO_TEST_SUITE_END()
