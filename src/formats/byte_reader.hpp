// Bounds-checked little-endian reads over untrusted bytes. Every failure names the file.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "qforge/error.hpp"

namespace qforge {

class ByteReader {
public:
    ByteReader(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

    uint64_t pos() const { return pos_; }
    uint64_t remaining() const { return bytes_.size() - pos_; }
    const std::string& name() const { return name_; }

    [[noreturn]] void fail(const std::string& problem) const { throw_bad_input(name_, problem); }

    void need(uint64_t n, const char* what) const {
        if (n > remaining()) fail(std::string("truncated file: ") + what + " runs past the end of the file");
    }
    template <class T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    const uint8_t* take(uint64_t n, const char* what) {
        need(n, what);
        const uint8_t* p = bytes_.data() + pos_;
        pos_ += n;
        return p;
    }

private:
    std::span<const uint8_t> bytes_;
    std::string name_;
    uint64_t pos_ = 0;
};

// True when s is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace qforge
