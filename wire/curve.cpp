// CURVE key files and socket options (see curve.h).
#include "wire/curve.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>
#include <zmq.h>

// libzmq 4.3 accepts this option, but its header only declares it for draft-API builds, which
// Debian's is not.
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

namespace rhythm::wire {
namespace {

constexpr std::size_t kMaxKeyFileBytes = 1 << 20;

std::string trim(const std::string &s) {
    const char *space = " \t\r\n";
    std::size_t b = s.find_first_not_of(space);
    if (b == std::string::npos) {
        return "";
    }
    return s.substr(b, s.find_last_not_of(space) - b + 1);
}

// The file's lines; false with `*error` when it cannot be read or is absurdly large.
bool read_lines(const std::string &path, std::vector<std::string> *lines, struct stat *st,
                std::string *error) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *error = path + ": " + std::strerror(errno);
        return false;
    }
    std::string text;
    bool ok = fstat(fd, st) == 0;
    if (ok && !S_ISREG(st->st_mode)) {
        *error = path + ": not a regular file";
        ok = false;
    }
    char buf[4096];
    while (ok) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            *error = path + ": " + std::strerror(errno);
            ok = false;
        } else if (n == 0) {
            break;
        } else if (text.size() + static_cast<std::size_t>(n) > kMaxKeyFileBytes) {
            *error = path + ": larger than 1 MiB, not a key file";
            ok = false;
        } else {
            text.append(buf, static_cast<std::size_t>(n));
        }
    }
    close(fd);
    if (!ok) {
        return false;
    }
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) {
            end = text.size();
        }
        lines->push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return true;
}

// What a key file line holds (see curve.h for where comments may be).
enum class LineKind { kBlank, kKey, kBad };

LineKind classify_line(const std::string &line, std::string *key_text) {
    std::string text = trim(line);
    if (text.empty() || text[0] == '#') {
        return LineKind::kBlank;
    }
    std::size_t end = text.find_first_of(" \t");
    std::string word = text.substr(0, end);
    std::string rest = end == std::string::npos ? "" : trim(text.substr(end));
    if (!decode_curve_key(word, nullptr) || !(rest.empty() || rest[0] == '#')) {
        return LineKind::kBad;
    }
    *key_text = word;
    return LineKind::kKey;
}

bool read_single_key(const std::string &path, const char *what, std::string *key_text,
                     struct stat *st, std::string *error) {
    std::vector<std::string> lines;
    if (!read_lines(path, &lines, st, error)) {
        return false;
    }
    std::string found;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::string key;
        LineKind kind = classify_line(lines[i], &key);
        if (kind == LineKind::kBlank) {
            continue;
        }
        std::string where = path + ":" + std::to_string(i + 1) + ": ";
        if (kind == LineKind::kBad) {
            *error = where + "not a " + what + " (40 Z85 characters, as `rss_node keygen` writes)";
            return false;
        }
        if (!found.empty()) {
            *error = where + "more than one key in a " + what + " file";
            return false;
        }
        found = key;
    }
    if (found.empty()) {
        *error = path + ": no key in the file";
        return false;
    }
    *key_text = found;
    return true;
}

bool write_key_file(const std::string &path, const std::string &key, mode_t mode,
                    std::string *error) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        *error = path + ": " + std::strerror(errno);
        return false;
    }
    std::string line = key + "\n";
    // The umask may only have narrowed `mode`; fchmod makes it exact.
    bool ok = fchmod(fd, mode) == 0 &&
              write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    if (!ok) {
        *error = path + ": " + std::strerror(errno);
    }
    if (close(fd) != 0 && ok) {
        *error = path + ": " + std::strerror(errno);
        ok = false;
    }
    if (!ok) {
        unlink(path.c_str());
    }
    return ok;
}

}  // namespace

bool decode_curve_key(const std::string &text, std::string *bytes) {
    if (text.size() != kCurveKeyText) {
        return false;
    }
    std::uint8_t decoded[kCurveKeyBytes];
    if (zmq_z85_decode(decoded, text.c_str()) == nullptr) {
        return false;
    }
    if (bytes != nullptr) {
        bytes->assign(reinterpret_cast<const char *>(decoded), sizeof decoded);
    }
    return true;
}

bool read_public_key_file(const std::string &path, std::string *key_text, std::string *error) {
    struct stat st;
    return read_single_key(path, "public key", key_text, &st, error);
}

bool read_secret_key_file(const std::string &path, std::string *key_text, std::string *error) {
    struct stat st;
    if (!read_single_key(path, "secret key", key_text, &st, error)) {
        return false;
    }
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        *error = path + ": a secret key must not be readable by group or others (mode " + mode +
                 "): chmod 600 it";
        return false;
    }
    return true;
}

bool public_key_of(const std::string &secret_text, std::string *public_text) {
    char derived[kCurveKeyText + 1];
    if (!decode_curve_key(secret_text, nullptr) ||
        zmq_curve_public(derived, secret_text.c_str()) != 0) {
        return false;
    }
    public_text->assign(derived, kCurveKeyText);
    return true;
}

bool write_key_pair(const std::string &path, std::string *error) {
    char public_text[kCurveKeyText + 1];
    char secret_text[kCurveKeyText + 1];
    if (zmq_curve_keypair(public_text, secret_text) != 0) {
        *error = std::string("cannot make a key pair: ") + zmq_strerror(zmq_errno());
        return false;
    }
    const std::string secret_path = path + ".key";
    const std::string public_path = path + ".pub";
    if (!write_key_file(secret_path, secret_text, 0600, error)) {
        return false;
    }
    if (!write_key_file(public_path, public_text, 0644, error)) {
        unlink(secret_path.c_str());
        return false;
    }
    return true;
}

bool read_client_keys(const std::string &path, std::set<std::string> *keys, std::string *error) {
    std::vector<std::string> lines;
    struct stat st;
    if (!read_lines(path, &lines, &st, error)) {
        return false;
    }
    std::set<std::string> read;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::string key_text;
        LineKind kind = classify_line(lines[i], &key_text);
        if (kind == LineKind::kBad) {
            *error = path + ":" + std::to_string(i + 1) +
                     ": not a public key (40 Z85 characters, as in a .pub file)";
            return false;
        }
        std::string key;
        if (kind == LineKind::kKey && decode_curve_key(key_text, &key)) {
            read.insert(key);
        }
    }
    *keys = std::move(read);
    return true;
}

bool load_client_keys(const std::string &server_public_file, const std::string &client_secret_file,
                      CurveClientKeys *keys, std::string *error) {
    CurveClientKeys loaded;
    if (!read_public_key_file(server_public_file, &loaded.server_public, error) ||
        !read_secret_key_file(client_secret_file, &loaded.client_secret, error)) {
        return false;
    }
    if (!public_key_of(loaded.client_secret, &loaded.client_public)) {
        *error = client_secret_file + ": not a usable secret key";
        return false;
    }
    *keys = std::move(loaded);
    return true;
}

bool make_curve_server(void *socket, const std::string &server_secret) {
    int on = 1;
    return zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &on, sizeof on) == 0 &&
           zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, server_secret.data(),
                          server_secret.size()) == 0 &&
           zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, kZapDomain, std::strlen(kZapDomain)) == 0 &&
           zmq_setsockopt(socket, ZMQ_ZAP_ENFORCE_DOMAIN, &on, sizeof on) == 0;
}

bool make_curve_client(void *socket, const CurveClientKeys &keys) {
    return zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, keys.server_public.data(),
                          keys.server_public.size()) == 0 &&
           zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, keys.client_public.data(),
                          keys.client_public.size()) == 0 &&
           zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, keys.client_secret.data(),
                          keys.client_secret.size()) == 0;
}

}  // namespace rhythm::wire
