// Signed session IDs (RhythmSessionKeyFile). Every web server of a bank shares a secret key and
// signs each ID it issues with it: the cookie is the ID's text form, a dot and a 128-bit tag
// (keyed BLAKE2b of the ID's 16 bytes), the tag in the same 22-character form. A request naming
// an ID that no server of the bank issued is then refused before it costs a lookup here or a
// fetch from the bank (express-session signs its session-ID cookie the same way).
//
// A key file holds one or more keys: the first signs, every one verifies, so keys rotate without
// ending anyone's session: put the new key first on every server, and a cookie signed with an
// older one is signed again with the new one on its next response; drop the old key once the
// longest session lifetime has passed. The bank and the operator commands keep using the plain
// 16-byte ID.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/session_id.h"

namespace rhythm {

class IdSigner {
  public:
    static constexpr std::size_t kKeyBytes = 32;
    static constexpr std::size_t kMaxKeys = 16;
    static constexpr std::size_t kTagBytes = 16;

    // Reads a key file: one key per line, 64 hex digits (`openssl rand -hex 32`); blank lines,
    // and comments from a `#` on. At least one key, at most kMaxKeys. Like an ssh key, the file
    // must not be readable by group or others. False with "FILE:LINE: reason" or "FILE: reason".
    bool load(const std::string &path, std::string *why);
    // The same from the file's text; `source` names it in the reasons.
    bool parse(std::string_view text, const std::string &source, std::string *why);

    bool signing() const { return !keys_.empty(); }
    std::size_t key_count() const { return keys_.size(); }

    // The cookie's value for `id`: its text form, with signing then a dot and its tag under the
    // first key.
    std::string cookie_value(const SessionId &id) const;

    enum class Verdict {
        kValid,         // signed with the first key; or, with signing off, a plain ID
        kOlderKey,      // signed with a key after the first: to be signed again with the first
        kUnsigned,      // a well-formed plain ID while signing is on
        kBadSignature,  // a well-formed ID and tag that no key here gives
        kMalformed,     // neither form
    };
    // What a cookie's value is; `*id` is set whatever the verdict but kMalformed.
    Verdict verify(std::string_view value, SessionId *id) const;

  private:
    using Key = std::array<unsigned char, kKeyBytes>;
    static std::array<unsigned char, kTagBytes> tag(const Key &key, const SessionId &id);

    std::vector<Key> keys_;
};

const char *id_verdict_name(IdSigner::Verdict verdict);

}  // namespace rhythm
