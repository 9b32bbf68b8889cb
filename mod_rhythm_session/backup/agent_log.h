// How the backup agent and its parts report: a line and its level, which the module's glue sends
// to httpd's error log (the agent is httpd-free).
#pragma once

namespace rhythm {

enum class AgentLogLevel { kDebug, kInfo, kWarn, kError };
using AgentLog = void (*)(AgentLogLevel level, const char *message);

// Formats a line (at most 511 bytes) and hands it to `log`.
void log_line(AgentLog log, AgentLogLevel level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

}  // namespace rhythm
