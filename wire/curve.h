// CURVE security for the bank's sockets: the key files `rss_node keygen` writes and everyone
// reads, and the socket options that make a socket a CURVE server or client.
//
// Keys travel as Z85 text (40 characters for 32 bytes), one key per file line. A bank shares one
// server key pair: every rss_node is a CURVE server with the bank's secret key, and each client
// (a web server's backup agent, an operator command, another node) has a key pair of its own and
// knows the bank's public key. A node admits a client only when its ZAP handler finds the client's
// public key listed (rss_node/zap_handler.h); ZAP domain enforcement makes a missing handler
// refuse everyone instead of admitting everyone.
#pragma once

#include <set>
#include <string>

namespace rhythm::wire {

constexpr std::size_t kCurveKeyText = 40;   // Z85 characters of a key
constexpr std::size_t kCurveKeyBytes = 32;  // ... and its bytes

// The ZAP domain every CURVE server socket of the bank announces.
constexpr char kZapDomain[] = "rhythm";

// True when `text` is a well-formed Z85 key; `*bytes` (if not null) gets its 32 bytes.
bool decode_curve_key(const std::string &text, std::string *bytes);

// In every key file a line that starts with `#` is a comment (no Z85 key starts with '#': its
// first group would overflow 32 bits), and a `#` after a key and a blank starts one; Z85 keys may
// contain '#' elsewhere.
//
// Reads a key file: one Z85 key, nothing else but blank lines or comments.
// A secret key file must not be readable by group or others (the same rule ssh applies), since
// anyone who reads it can impersonate its owner. On failure `*error` is "FILE: reason".
bool read_public_key_file(const std::string &path, std::string *key_text, std::string *error);
bool read_secret_key_file(const std::string &path, std::string *key_text, std::string *error);

// The public key that belongs to a secret key (both Z85).
bool public_key_of(const std::string &secret_text, std::string *public_text);

// Writes a new key pair: PATH.key (the secret, mode 0600) and PATH.pub (the public key). Refuses
// to overwrite either file. On failure `*error` says which file and why.
bool write_key_pair(const std::string &path, std::string *error);

// Reads an allowlist of client public keys: one Z85 key per line, comments and blank lines. `*keys`
// gets the 32-byte keys. On failure `*error` is "FILE:LINE: reason".
bool read_client_keys(const std::string &path, std::set<std::string> *keys, std::string *error);

// A CURVE client's keys, as Z85 text: the server's public key, and its own pair.
struct CurveClientKeys {
    std::string server_public;
    std::string client_public;
    std::string client_secret;

    bool enabled() const { return !server_public.empty(); }
};

// Loads the client side from the two files a client is given: the bank's .pub and its own .key.
bool load_client_keys(const std::string &server_public_file, const std::string &client_secret_file,
                      CurveClientKeys *keys, std::string *error);

// Socket options, set before bind/connect. False (errno from libzmq) when libzmq refuses.
bool make_curve_server(void *socket, const std::string &server_secret);
bool make_curve_client(void *socket, const CurveClientKeys &keys);

}  // namespace rhythm::wire
