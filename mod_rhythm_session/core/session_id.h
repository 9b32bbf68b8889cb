// Session IDs: 128 random bits from the kernel's CSPRNG. A session ID is the bank's session key
// (wire/session_key.h): the same 16 bytes, the same strict 22-character base64url text form in
// the cookie and in the operator commands, the same shard.
#pragma once

#include "wire/session_key.h"

namespace rhythm {

using SessionId = wire::SessionKey;

// Fills `id` from getrandom(2). Returns false only if the kernel refuses.
bool generate_session_id(SessionId *id);

// The first 6 characters of the text form: enough to correlate log lines, too little to use.
void session_id_log_prefix(const SessionId &id, char out[7]);

}  // namespace rhythm
