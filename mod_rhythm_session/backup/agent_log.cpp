// Formatting the agent's log lines (see agent_log.h).
#include "backup/agent_log.h"

#include <cstdarg>
#include <cstdio>

namespace rhythm {

void log_line(AgentLog log, AgentLogLevel level, const char *format, ...) {
    char buf[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    log(level, buf);
}

}  // namespace rhythm
