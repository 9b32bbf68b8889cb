// CURVE key files: what `rss_node keygen` writes, and how every key file is read and refused.
#include "wire/curve.h"

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

using namespace rhythm::wire;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/rhythm-curve-test-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
    std::string file(const std::string &name, const std::string &text, mode_t mode = 0600) const {
        std::string p = path + "/" + name;
        std::ofstream(p) << text;
        chmod(p.c_str(), mode);
        return p;
    }
};

std::string new_public_key() {
    char pub[41], sec[41];
    zmq_curve_keypair(pub, sec);
    return pub;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(curve)

BOOST_AUTO_TEST_CASE(keygen_writes_a_pair_that_belongs_together) {
    TempDir dir;
    std::string error;
    BOOST_TEST_REQUIRE(write_key_pair(dir.path + "/bank", &error), error);
    struct stat st;
    BOOST_TEST(stat((dir.path + "/bank.key").c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_TEST(stat((dir.path + "/bank.pub").c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0644u);
    std::string secret, public_key, derived;
    BOOST_TEST(read_secret_key_file(dir.path + "/bank.key", &secret, &error), error);
    BOOST_TEST(read_public_key_file(dir.path + "/bank.pub", &public_key, &error), error);
    BOOST_TEST(public_key_of(secret, &derived));
    BOOST_TEST(derived == public_key);
    // Never overwritten.
    BOOST_TEST(!write_key_pair(dir.path + "/bank", &error));
    BOOST_TEST(error.find("bank.key: File exists") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(key_files_are_checked) {
    TempDir dir;
    std::string key = new_public_key();
    std::string text, error;
    BOOST_TEST(read_public_key_file(dir.file("a.pub", "# bank\n\n" + key + "\n"), &text, &error));
    BOOST_TEST(text == key);
    BOOST_TEST(!read_public_key_file(dir.file("b.pub", key + "\n" + key + "\n"), &text, &error));
    BOOST_TEST(error.find("b.pub:2: more than one key") != std::string::npos);
    // One character short. (Not the first dropped: a key's second character may be '#', and the
    // line would then read as a comment.)
    BOOST_TEST(!read_public_key_file(dir.file("c.pub", key.substr(0, key.size() - 1) + "\n"), &text,
                                     &error));
    BOOST_TEST(error.find("c.pub:1: not a public key") != std::string::npos);
    BOOST_TEST(!read_public_key_file(dir.file("d.pub", "# nothing\n"), &text, &error));
    BOOST_TEST(error.find("no key in the file") != std::string::npos);
    BOOST_TEST(!read_public_key_file(dir.path + "/missing.pub", &text, &error));
    BOOST_TEST(error.find("No such file") != std::string::npos);
    BOOST_TEST(!read_public_key_file(dir.path, &text, &error));
    BOOST_TEST(error.find("not a regular file") != std::string::npos);
    // A secret key others can read is refused.
    BOOST_TEST(!read_secret_key_file(dir.file("e.key", key + "\n", 0640), &text, &error));
    BOOST_TEST(error.find("mode 0640") != std::string::npos);
    BOOST_TEST(read_secret_key_file(dir.file("f.key", key + "\n", 0400), &text, &error), error);
}

BOOST_AUTO_TEST_CASE(client_lists_allow_comments_and_keys_that_contain_hashes) {
    TempDir dir;
    // Z85 has '#' in its alphabet (never first: it would overflow 32 bits).
    std::string hashed = new_public_key();
    while (hashed.find('#') == std::string::npos) {
        hashed = new_public_key();
    }
    BOOST_TEST(!decode_curve_key("#" + hashed.substr(1), nullptr));
    std::string plain = new_public_key();
    std::set<std::string> keys;
    std::string error;
    std::string list = "# web servers\n\n" + hashed + "\n  " + plain + "   # web2\n";
    BOOST_TEST(read_client_keys(dir.file("clients", list), &keys, &error), error);
    std::string hashed_bytes, plain_bytes;
    decode_curve_key(hashed, &hashed_bytes);
    decode_curve_key(plain, &plain_bytes);
    BOOST_TEST(keys.size() == 2u);
    BOOST_TEST(keys.count(hashed_bytes) == 1u);
    BOOST_TEST(keys.count(plain_bytes) == 1u);
    BOOST_TEST(
        !read_client_keys(dir.file("bad", plain + "\n" + plain + " trailing\n"), &keys, &error));
    BOOST_TEST(error.find("bad:2: not a public key") != std::string::npos);
    BOOST_TEST(keys.size() == 2u);  // untouched on failure
    BOOST_TEST(read_client_keys(dir.file("empty", ""), &keys, &error));
    BOOST_TEST(keys.empty());
}

BOOST_AUTO_TEST_CASE(client_keys_derive_the_public_key_from_the_secret) {
    TempDir dir;
    std::string error;
    BOOST_TEST_REQUIRE(write_key_pair(dir.path + "/bank", &error), error);
    BOOST_TEST_REQUIRE(write_key_pair(dir.path + "/web1", &error), error);
    CurveClientKeys keys;
    BOOST_TEST(load_client_keys(dir.path + "/bank.pub", dir.path + "/web1.key", &keys, &error),
               error);
    std::string web1_public;
    read_public_key_file(dir.path + "/web1.pub", &web1_public, &error);
    BOOST_TEST(keys.client_public == web1_public);
    BOOST_TEST(keys.enabled());
    // The files the other way round: a .pub is world-readable, so it is refused as a secret.
    BOOST_TEST(!load_client_keys(dir.path + "/bank.key", dir.path + "/web1.pub", &keys, &error));
    BOOST_TEST(error.find("web1.pub") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
