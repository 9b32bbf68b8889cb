#include "common/prometheus_text.h"

#include <cctype>
#include <cstdio>

namespace rhythm {

std::string metric_name(std::string_view auto_key) {
    std::string out;
    for (std::size_t i = 0; i < auto_key.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(auto_key[i]);
        unsigned char before = i > 0 ? static_cast<unsigned char>(auto_key[i - 1]) : 0;
        if (std::isupper(c) && (std::islower(before) || std::isdigit(before))) {
            out += '_';
        }
        out += static_cast<char>(std::tolower(c));
    }
    return out;
}

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
    text_ += "# HELP ";
    text_ += name;
    text_ += ' ';
    for (char c : help) {
        if (c == '\\') {
            text_ += "\\\\";
        } else if (c == '\n') {
            text_ += "\\n";
        } else {
            text_ += c;
        }
    }
    text_ += "\n# TYPE ";
    text_ += name;
    text_ += ' ';
    text_ += type;
    text_ += '\n';
}

void PrometheusText::sample_start(std::string_view name, std::initializer_list<Label> labels) {
    text_ += name;
    if (labels.size() > 0) {
        text_ += '{';
        bool first = true;
        for (const Label &l : labels) {
            if (!first) {
                text_ += ',';
            }
            first = false;
            text_ += l.name;
            text_ += "=\"";
            for (char c : l.value) {
                if (c == '\\' || c == '"') {
                    text_ += '\\';
                    text_ += c;
                } else if (c == '\n') {
                    text_ += "\\n";
                } else {
                    text_ += c;
                }
            }
            text_ += '"';
        }
        text_ += '}';
    }
    text_ += ' ';
}

void PrometheusText::sample(std::string_view name, std::initializer_list<Label> labels,
                            std::uint64_t value) {
    sample_start(name, labels);
    text_ += std::to_string(value);
    text_ += '\n';
}

void PrometheusText::sample(std::string_view name, std::initializer_list<Label> labels,
                            double value) {
    sample_start(name, labels);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", value);
    text_ += buf;
    text_ += '\n';
}

}  // namespace rhythm
