// Who a session says is logged in: mod_session's and mod_auth_form's keys by default, or the one
// an administrator names; the same user whatever the order of the keys; logging in, switching
// user and logging out each change it.
#include "core/login_identity.h"

#include <boost/test/unit_test.hpp>

using rhythm::login_identity;

BOOST_AUTO_TEST_SUITE(login_identity_of_a_session)

BOOST_AUTO_TEST_CASE(nobody_is_logged_in_without_a_login_key_or_its_value) {
    BOOST_TEST(login_identity("", "").empty());
    BOOST_TEST(login_identity("count=3&expiry=1700000000000000", "").empty());
    BOOST_TEST(login_identity("members-user=&count=3", "").empty());  // logged out
    BOOST_TEST(login_identity("members-user&count=3", "").empty());
    BOOST_TEST(login_identity("-user=alice&username=alice&userx=alice", "").empty());
}

BOOST_AUTO_TEST_CASE(mod_auth_form_and_mod_session_keys_name_the_user) {
    BOOST_TEST(login_identity("count=3&members-user=alice&members-pw=s3cret", "") ==
               "members-user=alice");
    BOOST_TEST(login_identity("user=bob", "") == "user=bob");
    // Two realms: both count, in an order that does not depend on the session's.
    BOOST_TEST(login_identity("b-user=x&a-user=y", "") == login_identity("a-user=y&b-user=x", ""));
    BOOST_TEST(login_identity("b-user=x&a-user=y", "") != login_identity("a-user=y", ""));
}

BOOST_AUTO_TEST_CASE(a_switch_of_user_changes_the_identity) {
    BOOST_TEST(login_identity("members-user=alice", "") != login_identity("members-user=bob", ""));
    BOOST_TEST(login_identity("count=1", "") != login_identity("count=2&members-user=alice", ""));
}

BOOST_AUTO_TEST_CASE(a_named_key_replaces_the_default_ones) {
    BOOST_TEST(login_identity("uid=42&members-user=alice", "uid") == "uid=42");
    BOOST_TEST(login_identity("members-user=alice", "uid").empty());
    // Keys are compared decoded, as mod_session decodes them.
    BOOST_TEST(login_identity("my%20id=7&other=1", "my id") == "my%20id=7");
    BOOST_TEST(login_identity("my+id=7", "my id") == "my+id=7");
    BOOST_TEST(login_identity("my%2", "my%2").empty());        // no value
    BOOST_TEST(login_identity("my%2=1", "my%2") == "my%2=1");  // a malformed escape stays
}

BOOST_AUTO_TEST_SUITE_END()
