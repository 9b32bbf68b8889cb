// Who a session says is logged in, read from the session as mod_session encodes it, so that the
// module can give the session a new ID when that changes (RhythmSessionRenewOnLogin): an ID an
// attacker planted or learned before the login is then worthless after it (session fixation;
// OWASP, and Tomcat's changeSessionIdOnAuthentication). Kept free of httpd so that it is
// unit-tested.
#pragma once

#include <string>
#include <string_view>

namespace rhythm {

// The login keys of `encoded` (mod_session's form: key=value pairs joined by '&', each
// URL-encoded) with their values, sorted and joined, as they are encoded: two sessions with the
// same user have the same identity, whatever the order of their keys. The login keys are
// `login_key` when it is given (RhythmSessionLoginKey), else mod_session's "user" and
// mod_auth_form's "AUTHNAME-user". A key with an empty value is not a login. Empty: nobody is
// logged in.
std::string login_identity(std::string_view encoded, std::string_view login_key);

}  // namespace rhythm
