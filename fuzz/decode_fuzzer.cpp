// libFuzzer target for the wire decoders (see fuzz/decode_input.h for the input layout).
#include <cstddef>
#include <cstdint>

#include "fuzz/decode_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    rhythm::wire::fuzz_decode_input(data, size);
    return 0;
}
