// libFuzzer target for the module's cookie, session-ID and directive parsing (see
// fuzz/session_cookie_input.h).
#include <cstddef>
#include <cstdint>

#include "fuzz/session_cookie_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    rhythm::fuzz_session_cookie_input(data, size);
    return 0;
}
