// Signed session IDs (see id_signer.h).
#include "core/id_signer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/number.h"
#include "wire/session_key.h"

namespace rhythm {
namespace {

constexpr std::size_t kIdText = 22;
constexpr std::size_t kLargestKeyFile = 64 * 1024;

std::string_view trimmed(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

bool IdSigner::load(const std::string &path, std::string *why) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = path + ": cannot open it (" + std::strerror(errno) + ")";
        return false;
    }
    struct stat st;
    std::string text;
    bool read_all = fstat(fd, &st) == 0;
    if (read_all && (st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        close(fd);
        *why = path + ": a secret key must not be readable by group or others (mode " + mode +
               "): chmod 600 it";
        return false;
    }
    char buf[4096];
    while (read_all) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
            read_all = n == 0;
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kLargestKeyFile) {
            close(fd);
            *why = path + ": larger than a key file can be (64 KiB)";
            return false;
        }
    }
    close(fd);
    if (!read_all) {
        *why = path + ": cannot read it";
        return false;
    }
    return parse(text, path, why);
}

bool IdSigner::parse(std::string_view text, const std::string &source, std::string *why) {
    if (sodium_init() < 0) {
        *why = "libsodium cannot start";
        return false;
    }
    std::vector<Key> keys;
    std::size_t line_number = 0;
    while (!text.empty()) {
        std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        ++line_number;
        line = trimmed(line.substr(0, line.find('#')));
        if (line.empty()) {
            continue;
        }
        std::string where = source + ":" + std::to_string(line_number) + ": ";
        if (line.size() != 2 * kKeyBytes) {
            *why = where + "a key is 64 hex digits (openssl rand -hex 32), this line has " +
                   std::to_string(line.size()) + " characters";
            return false;
        }
        Key key;
        for (std::size_t i = 0; i < kKeyBytes; ++i) {
            int high = hex_digit_value(line[2 * i]), low = hex_digit_value(line[2 * i + 1]);
            if (high < 0 || low < 0) {
                *why = where + "a key is 64 hex digits (openssl rand -hex 32)";
                return false;
            }
            key[i] = static_cast<unsigned char>(high * 16 + low);
        }
        if (keys.size() == kMaxKeys) {
            *why = where + "more than 16 keys";
            return false;
        }
        keys.push_back(key);
    }
    if (keys.empty()) {
        *why = source + ": no key in it (one per line, 64 hex digits: openssl rand -hex 32)";
        return false;
    }
    keys_ = std::move(keys);
    return true;
}

std::array<unsigned char, IdSigner::kTagBytes> IdSigner::tag(const Key &key, const SessionId &id) {
    std::array<unsigned char, kTagBytes> out;
    crypto_generichash(out.data(), out.size(), id.bytes.data(), id.bytes.size(), key.data(),
                       key.size());
    return out;
}

std::string IdSigner::cookie_value(const SessionId &id) const {
    std::string text = wire::format_session_key(id);
    if (keys_.empty()) {
        return text;
    }
    wire::SessionKey tag_bytes;
    auto t = tag(keys_.front(), id);
    std::copy(t.begin(), t.end(), tag_bytes.bytes.begin());
    return text + "." + wire::format_session_key(tag_bytes);
}

IdSigner::Verdict IdSigner::verify(std::string_view value, SessionId *id) const {
    if (value.size() == kIdText) {
        if (!wire::parse_session_key(value, id)) {
            return Verdict::kMalformed;
        }
        return keys_.empty() ? Verdict::kValid : Verdict::kUnsigned;
    }
    wire::SessionKey given;
    if (value.size() != 2 * kIdText + 1 || value[kIdText] != '.' ||
        !wire::parse_session_key(value.substr(0, kIdText), id) ||
        !wire::parse_session_key(value.substr(kIdText + 1), &given)) {
        return Verdict::kMalformed;
    }
    // Every key is tried, so the time taken says nothing of which one matched.
    int matched = -1;
    for (std::size_t i = 0; i < keys_.size(); ++i) {
        auto expected = tag(keys_[i], *id);
        if (sodium_memcmp(expected.data(), given.bytes.data(), kTagBytes) == 0 && matched < 0) {
            matched = static_cast<int>(i);
        }
    }
    return matched == 0  ? Verdict::kValid
           : matched > 0 ? Verdict::kOlderKey
                         : Verdict::kBadSignature;
}

const char *id_verdict_name(IdSigner::Verdict verdict) {
    switch (verdict) {
        case IdSigner::Verdict::kValid:
            return "valid";
        case IdSigner::Verdict::kOlderKey:
            return "signed with an older key";
        case IdSigner::Verdict::kUnsigned:
            return "not signed";
        case IdSigner::Verdict::kBadSignature:
            return "signed with no key of this server";
        case IdSigner::Verdict::kMalformed:
            return "malformed";
    }
    return "?";
}

}  // namespace rhythm
