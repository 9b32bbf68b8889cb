// JSON text for status replies.
#include "rss_node/json_writer.h"

#include <cstdio>

namespace rhythm::node {

void JsonWriter::separator() {
    if (!first_) {
        out_ += ',';
    }
    first_ = false;
}

void JsonWriter::string(std::string_view s) {
    out_ += '"';
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out_ += '\\';
            out_ += c;
        } else if (u < 0x20 || u >= 0x7f) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", u);
            out_ += esc;
        } else {
            out_ += c;
        }
    }
    out_ += '"';
}

void JsonWriter::key(std::string_view k) {
    separator();
    string(k);
    out_ += ':';
}

void JsonWriter::begin_object() {
    separator();
    out_ += '{';
    first_ = true;
}

void JsonWriter::end_object() {
    out_ += '}';
    first_ = false;
}

void JsonWriter::begin_array(std::string_view k) {
    key(k);
    out_ += '[';
    first_ = true;
}

void JsonWriter::end_array() {
    out_ += ']';
    first_ = false;
}

void JsonWriter::field(std::string_view k, std::uint64_t value) {
    key(k);
    out_ += std::to_string(value);
}

void JsonWriter::field(std::string_view k, std::string_view value) {
    key(k);
    string(value);
}

void JsonWriter::field_bool(std::string_view k, bool value) {
    key(k);
    out_ += value ? "true" : "false";
}

}  // namespace rhythm::node
