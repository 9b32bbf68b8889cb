// libFuzzer target for the operator's end-session command (see fuzz/end_session_input.h).
#include <cstddef>
#include <cstdint>

#include "fuzz/end_session_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    rhythm::node::fuzz_end_session_input(data, size);
    return 0;
}
