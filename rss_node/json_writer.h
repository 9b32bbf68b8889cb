// A small writer of JSON objects for the status reply: keys in the order written, strings
// escaped, numbers as unsigned integers. Enough for flat objects and arrays of objects.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rhythm::node {

class JsonWriter {
  public:
    void begin_object();
    void end_object();
    void begin_array(std::string_view key);
    void end_array();
    void field(std::string_view key, std::uint64_t value);
    void field(std::string_view key, std::string_view value);
    void field_bool(std::string_view key, bool value);

    const std::string &text() const { return out_; }

  private:
    void key(std::string_view k);
    void separator();
    void string(std::string_view s);

    std::string out_;
    bool first_ = true;
};

}  // namespace rhythm::node
