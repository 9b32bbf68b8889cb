// Splits fuzz input into frames and checks decode -> encode is the identity on what decodes.
#include "fuzz/decode_input.h"

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "wire/messages.h"

namespace rhythm::wire {
namespace {

constexpr std::size_t kMaxFuzzFrames = 6;

[[noreturn]] void fail(const char *what) {
    std::fprintf(stderr, "fuzz_decode_input: %s\n", what);
    std::abort();
}

bool same_frames(const Frames &encoded, const std::vector<std::string_view> &frames) {
    if (encoded.size() != frames.size()) {
        return false;
    }
    for (std::size_t i = 0; i < frames.size(); ++i) {
        if (encoded[i] != frames[i]) {
            return false;
        }
    }
    return true;
}

}  // namespace

bool fuzz_decode_input(const std::uint8_t *data, std::size_t size) {
    if (size == 0) {
        return false;
    }
    bool published = (data[0] & 1) == 0;
    std::vector<std::string_view> frames;
    std::size_t pos = 1;
    while (pos < size && frames.size() < kMaxFuzzFrames) {
        std::size_t len = data[pos];
        if (pos + 1 < size) {
            len = (len << 8) | data[pos + 1];
        }
        pos += 2;
        if (pos > size) {
            pos = size;
        }
        if (len > size - pos) {
            len = size - pos;
        }
        frames.emplace_back(reinterpret_cast<const char *>(data + pos), len);
        pos += len;
    }
    if (published) {
        Published message;
        DecodeResult result = decode_published(frames, &message);
        if (result.ok() && !same_frames(encode_published(message), frames)) {
            fail("a published message did not encode back to its frames");
        }
        if (!result.ok() && result.message == nullptr) {
            fail("an error without a message");
        }
        return result.ok();
    }
    Message message;
    DecodeResult result = decode_message(frames, &message);
    if (result.ok() && !same_frames(encode_message(message), frames)) {
        fail("a message did not encode back to its frames");
    }
    if (!result.ok() && result.message == nullptr) {
        fail("an error without a message");
    }
    return result.ok();
}

}  // namespace rhythm::wire
