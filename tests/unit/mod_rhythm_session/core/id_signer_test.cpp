// Signed session IDs: the key file's form and its errors, a signed cookie that verifies with the
// key that signed it and no other, rotation (an older key verifies and asks to be replaced), and
// every way a cookie can fail.
#include "core/id_signer.h"

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "wire/session_key.h"

using rhythm::IdSigner;
using rhythm::SessionId;
using Verdict = rhythm::IdSigner::Verdict;

namespace {

const std::string kKeyA(64, 'a');
const std::string kKeyB = "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef";

IdSigner signer(const std::string &text) {
    IdSigner s;
    std::string why;
    BOOST_REQUIRE_MESSAGE(s.parse(text, "keys", &why), why);
    return s;
}

SessionId id_of(unsigned char n) {
    SessionId id;
    id.bytes.fill(n);
    return id;
}

std::string why_refused(const std::string &text) {
    IdSigner s;
    std::string why;
    BOOST_TEST(!s.parse(text, "keys", &why));
    BOOST_TEST(!s.signing());
    return why;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(id_signer)

BOOST_AUTO_TEST_CASE(without_keys_a_cookie_is_the_plain_id) {
    IdSigner off;
    SessionId id = id_of(7), back;
    std::string value = off.cookie_value(id);
    BOOST_TEST(value == rhythm::wire::format_session_key(id));
    BOOST_TEST((off.verify(value, &back) == Verdict::kValid));
    BOOST_TEST((back == id));
    // A signed form means a server of the bank signs and this one has no key: refused.
    BOOST_TEST((off.verify(signer(kKeyA).cookie_value(id), &back) == Verdict::kBadSignature));
}

BOOST_AUTO_TEST_CASE(a_signed_id_verifies_with_its_key_and_with_no_other) {
    IdSigner a = signer(kKeyA + "\n"), b = signer(kKeyB);
    SessionId id = id_of(1), back;
    std::string value = a.cookie_value(id);
    BOOST_TEST(value.size() == 45u);
    BOOST_TEST(value.substr(0, 22) == rhythm::wire::format_session_key(id));
    BOOST_TEST(value[22] == '.');
    BOOST_TEST((a.verify(value, &back) == Verdict::kValid));
    BOOST_TEST((back == id));
    BOOST_TEST((b.verify(value, &back) == Verdict::kBadSignature));
    // Another ID under the same tag; a plain ID; a tag one character off.
    std::string other = rhythm::wire::format_session_key(id_of(2)) + value.substr(22);
    BOOST_TEST((a.verify(other, &back) == Verdict::kBadSignature));
    BOOST_TEST((a.verify(value.substr(0, 22), &back) == Verdict::kUnsigned));
    std::string flipped = value;
    flipped[30] = flipped[30] == 'A' ? 'B' : 'A';
    BOOST_TEST((a.verify(flipped, &back) == Verdict::kBadSignature));
}

BOOST_AUTO_TEST_CASE(keys_rotate_the_first_signs_and_every_one_verifies) {
    IdSigner old_only = signer(kKeyA), rotated = signer(kKeyB + "\n" + kKeyA + "\n");
    SessionId id = id_of(3), back;
    BOOST_TEST((rotated.verify(old_only.cookie_value(id), &back) == Verdict::kOlderKey));
    BOOST_TEST((rotated.verify(rotated.cookie_value(id), &back) == Verdict::kValid));
    BOOST_TEST(rotated.cookie_value(id) != old_only.cookie_value(id));
    BOOST_TEST((old_only.verify(rotated.cookie_value(id), &back) == Verdict::kBadSignature));
}

BOOST_AUTO_TEST_CASE(malformed_cookies_are_refused) {
    IdSigner a = signer(kKeyA);
    std::string value = a.cookie_value(id_of(4));
    SessionId back;
    for (const std::string &bad :
         {std::string(), std::string("x"), value + "A", value.substr(0, 44),
          value.substr(0, 22) + "_" + value.substr(23),
          value.substr(0, 22) + "." + "!" + value.substr(24), std::string(45, '.'),
          value.substr(0, 21) + "!"}) {
        BOOST_TEST((a.verify(bad, &back) == Verdict::kMalformed), bad);
    }
}

BOOST_AUTO_TEST_CASE(a_key_file_has_comments_blank_lines_and_at_most_16_keys) {
    IdSigner s = signer("# the bank's ID keys\n\n" + kKeyB + "  # since December\r\n" + kKeyA);
    BOOST_TEST(s.key_count() == 2u);
    BOOST_TEST(why_refused("") ==
               "keys: no key in it (one per line, 64 hex digits: openssl "
               "rand -hex 32)");
    BOOST_TEST(why_refused("# nothing\n") ==
               "keys: no key in it (one per line, 64 hex digits: openssl rand -hex 32)");
    BOOST_TEST(why_refused(kKeyA + "\nabc\n") ==
               "keys:2: a key is 64 hex digits (openssl rand -hex 32), this line has 3 "
               "characters");
    BOOST_TEST(why_refused(std::string(63, 'a') + "g") ==
               "keys:1: a key is 64 hex digits (openssl rand -hex 32)");
    std::string seventeen;
    for (int i = 0; i < 17; ++i) {
        seventeen += kKeyA + "\n";
    }
    BOOST_TEST(why_refused(seventeen) == "keys:17: more than 16 keys");
}

BOOST_AUTO_TEST_CASE(a_key_file_others_can_read_is_refused) {
    std::string path = "/tmp/rhythm-id-signer-test-" + std::to_string(getpid());
    std::ofstream(path) << kKeyA << "\n";
    IdSigner s;
    std::string why;
    BOOST_REQUIRE(chmod(path.c_str(), 0644) == 0);
    BOOST_TEST(!s.load(path, &why));
    BOOST_TEST(why == path +
                          ": a secret key must not be readable by group or others (mode "
                          "0644): chmod 600 it");
    BOOST_REQUIRE(chmod(path.c_str(), 0600) == 0);
    BOOST_TEST(s.load(path, &why), why);
    BOOST_TEST(s.key_count() == 1u);
    unlink(path.c_str());
    BOOST_TEST(!s.load(path, &why));
    BOOST_TEST(why.find(path + ": cannot open it") == 0u, why);
}

BOOST_AUTO_TEST_SUITE_END()
