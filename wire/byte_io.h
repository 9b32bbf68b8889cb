// Big-endian field writers and a bounds-checked reader over one received frame. Every protocol
// integer is unsigned and in network byte order. The reader never looks past its frame: each
// read first checks the bytes remaining, and a failed read leaves the output untouched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rhythm::wire {

inline void put_u8(std::string *out, std::uint8_t v) {
    out->push_back(static_cast<char>(v));
}

inline void put_u16(std::string *out, std::uint16_t v) {
    put_u8(out, static_cast<std::uint8_t>(v >> 8));
    put_u8(out, static_cast<std::uint8_t>(v));
}

inline void put_u32(std::string *out, std::uint32_t v) {
    put_u16(out, static_cast<std::uint16_t>(v >> 16));
    put_u16(out, static_cast<std::uint16_t>(v));
}

inline void put_u64(std::string *out, std::uint64_t v) {
    put_u32(out, static_cast<std::uint32_t>(v >> 32));
    put_u32(out, static_cast<std::uint32_t>(v));
}

inline void put_bytes(std::string *out, const void *data, std::size_t size) {
    out->append(static_cast<const char *>(data), size);
}

class ByteReader {
  public:
    explicit ByteReader(std::string_view frame) : frame_(frame) {}

    std::size_t remaining() const { return frame_.size() - pos_; }

    bool u8(std::uint8_t *v) {
        if (remaining() < 1) {
            return false;
        }
        *v = byte(pos_++);
        return true;
    }

    bool u16(std::uint16_t *v) {
        std::uint64_t x;
        if (!uint(2, &x)) {
            return false;
        }
        *v = static_cast<std::uint16_t>(x);
        return true;
    }

    bool u32(std::uint32_t *v) {
        std::uint64_t x;
        if (!uint(4, &x)) {
            return false;
        }
        *v = static_cast<std::uint32_t>(x);
        return true;
    }

    bool u64(std::uint64_t *v) { return uint(8, v); }

    // A view of the next `size` bytes, inside the frame.
    bool bytes(std::size_t size, std::string_view *v) {
        if (remaining() < size) {
            return false;
        }
        *v = frame_.substr(pos_, size);
        pos_ += size;
        return true;
    }

    // Copies the next `size` bytes into `dest`.
    bool copy(std::size_t size, void *dest) {
        std::string_view v;
        if (!bytes(size, &v)) {
            return false;
        }
        for (std::size_t i = 0; i < size; ++i) {
            static_cast<std::uint8_t *>(dest)[i] = static_cast<std::uint8_t>(v[i]);
        }
        return true;
    }

    // Everything left in the frame.
    std::string_view rest() {
        std::string_view v = frame_.substr(pos_);
        pos_ = frame_.size();
        return v;
    }

  private:
    std::uint8_t byte(std::size_t i) const { return static_cast<std::uint8_t>(frame_[i]); }

    bool uint(std::size_t width, std::uint64_t *v) {
        if (remaining() < width) {
            return false;
        }
        std::uint64_t x = 0;
        for (std::size_t i = 0; i < width; ++i) {
            x = (x << 8) | byte(pos_ + i);
        }
        pos_ += width;
        *v = x;
        return true;
    }

    std::string_view frame_;
    std::size_t pos_ = 0;
};

}  // namespace rhythm::wire
