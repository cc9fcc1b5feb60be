// GgufValue construction, conversion and display.
#include <cstring>
#include <sstream>

#include "qforge/gguf.hpp"

namespace qforge {

const char* gguf_type_name(GgufValueType t) {
    switch (t) {
        case GgufValueType::UINT8: return "UINT8";
        case GgufValueType::INT8: return "INT8";
        case GgufValueType::UINT16: return "UINT16";
        case GgufValueType::INT16: return "INT16";
        case GgufValueType::UINT32: return "UINT32";
        case GgufValueType::INT32: return "INT32";
        case GgufValueType::FLOAT32: return "FLOAT32";
        case GgufValueType::BOOL: return "BOOL";
        case GgufValueType::STRING: return "STRING";
        case GgufValueType::ARRAY: return "ARRAY";
        case GgufValueType::UINT64: return "UINT64";
        case GgufValueType::INT64: return "INT64";
        case GgufValueType::FLOAT64: return "FLOAT64";
    }
    return "?";
}

size_t gguf_scalar_size(GgufValueType t) {
    switch (t) {
        case GgufValueType::UINT8:
        case GgufValueType::INT8:
        case GgufValueType::BOOL: return 1;
        case GgufValueType::UINT16:
        case GgufValueType::INT16: return 2;
        case GgufValueType::UINT32:
        case GgufValueType::INT32:
        case GgufValueType::FLOAT32: return 4;
        case GgufValueType::UINT64:
        case GgufValueType::INT64:
        case GgufValueType::FLOAT64: return 8;
        case GgufValueType::STRING:
        case GgufValueType::ARRAY: return 0;
    }
    return 0;
}

namespace {
GgufValue scalar(GgufValueType t, uint64_t bits) {
    GgufValue v;
    v.type = t;
    v.bits = bits;
    return v;
}

int64_t sign_extend(uint64_t bits, size_t bytes) {
    const unsigned shift = 64u - 8u * static_cast<unsigned>(bytes);
    return static_cast<int64_t>(bits << shift) >> shift;
}
}  // namespace

GgufValue GgufValue::u8(uint8_t v) { return scalar(GgufValueType::UINT8, v); }
GgufValue GgufValue::i8(int8_t v) { return scalar(GgufValueType::INT8, static_cast<uint8_t>(v)); }
GgufValue GgufValue::u16(uint16_t v) { return scalar(GgufValueType::UINT16, v); }
GgufValue GgufValue::i16(int16_t v) { return scalar(GgufValueType::INT16, static_cast<uint16_t>(v)); }
GgufValue GgufValue::u32(uint32_t v) { return scalar(GgufValueType::UINT32, v); }
GgufValue GgufValue::i32(int32_t v) { return scalar(GgufValueType::INT32, static_cast<uint32_t>(v)); }
GgufValue GgufValue::u64(uint64_t v) { return scalar(GgufValueType::UINT64, v); }
GgufValue GgufValue::i64(int64_t v) { return scalar(GgufValueType::INT64, static_cast<uint64_t>(v)); }
GgufValue GgufValue::f32(float v) {
    uint32_t b;
    std::memcpy(&b, &v, 4);
    return scalar(GgufValueType::FLOAT32, b);
}
GgufValue GgufValue::f64(double v) {
    uint64_t b;
    std::memcpy(&b, &v, 8);
    return scalar(GgufValueType::FLOAT64, b);
}
GgufValue GgufValue::boolean(bool v) { return scalar(GgufValueType::BOOL, v ? 1 : 0); }
GgufValue GgufValue::string(std::string s) {
    GgufValue v;
    v.type = GgufValueType::STRING;
    v.str = std::move(s);
    return v;
}
GgufValue GgufValue::string_array(std::vector<std::string> s) {
    GgufValue v;
    v.type = GgufValueType::ARRAY;
    v.array = std::make_shared<GgufArray>();
    v.array->elem_type = GgufValueType::STRING;
    v.array->count = s.size();
    v.array->strings = std::move(s);
    return v;
}

template <class Num>
GgufValue GgufValue::numeric_array(GgufValueType elem, const std::vector<Num>& data) {
    GgufValue v;
    v.type = GgufValueType::ARRAY;
    v.array = std::make_shared<GgufArray>();
    v.array->elem_type = elem;
    v.array->count = data.size();
    const size_t es = gguf_scalar_size(elem);
    v.array->raw.resize(data.size() * es);
    for (size_t i = 0; i < data.size(); ++i) {
        if (elem == GgufValueType::FLOAT32) {
            const float f = static_cast<float>(data[i]);
            std::memcpy(&v.array->raw[i * es], &f, 4);
        } else if (elem == GgufValueType::FLOAT64) {
            const double d = static_cast<double>(data[i]);
            std::memcpy(&v.array->raw[i * es], &d, 8);
        } else {
            const uint64_t b = static_cast<uint64_t>(static_cast<int64_t>(data[i]));
            std::memcpy(&v.array->raw[i * es], &b, es);  // little-endian host
        }
    }
    return v;
}
template GgufValue GgufValue::numeric_array<float>(GgufValueType, const std::vector<float>&);
template GgufValue GgufValue::numeric_array<int32_t>(GgufValueType, const std::vector<int32_t>&);
template GgufValue GgufValue::numeric_array<int64_t>(GgufValueType, const std::vector<int64_t>&);
template GgufValue GgufValue::numeric_array<uint32_t>(GgufValueType, const std::vector<uint32_t>&);
template GgufValue GgufValue::numeric_array<double>(GgufValueType, const std::vector<double>&);

bool GgufValue::is_integer() const {
    switch (type) {
        case GgufValueType::UINT8:
        case GgufValueType::INT8:
        case GgufValueType::UINT16:
        case GgufValueType::INT16:
        case GgufValueType::UINT32:
        case GgufValueType::INT32:
        case GgufValueType::UINT64:
        case GgufValueType::INT64: return true;
        default: return false;
    }
}

std::optional<int64_t> GgufValue::as_int() const {
    switch (type) {
        case GgufValueType::UINT8:
        case GgufValueType::UINT16:
        case GgufValueType::UINT32:
        case GgufValueType::UINT64:
        case GgufValueType::BOOL: return static_cast<int64_t>(bits);
        case GgufValueType::INT8:
        case GgufValueType::INT16:
        case GgufValueType::INT32:
        case GgufValueType::INT64: return sign_extend(bits, gguf_scalar_size(type));
        default: return std::nullopt;
    }
}

std::optional<double> GgufValue::as_double() const {
    if (type == GgufValueType::FLOAT32) {
        float f;
        const uint32_t b = static_cast<uint32_t>(bits);
        std::memcpy(&f, &b, 4);
        return f;
    }
    if (type == GgufValueType::FLOAT64) {
        double d;
        std::memcpy(&d, &bits, 8);
        return d;
    }
    if (type == GgufValueType::UINT64) return static_cast<double>(bits);
    if (auto i = as_int()) return static_cast<double>(*i);
    return std::nullopt;
}

namespace {
std::string quote(const std::string& s, size_t max_len = 60) {
    std::string out = "\"";
    for (size_t i = 0; i < s.size() && i < max_len; ++i) {
        const char c = s[i];
        if (c == '\n') out += "\\n";
        else if (c == '"') out += "\\\"";
        else if (static_cast<unsigned char>(c) < 0x20) out += "?";
        else out += c;
    }
    if (s.size() > max_len) out += "...";
    return out + "\"";
}

std::string element_display(const GgufArray& a, size_t i) {
    const size_t es = gguf_scalar_size(a.elem_type);
    GgufValue e;
    e.type = a.elem_type;
    std::memcpy(&e.bits, &a.raw[i * es], es);
    return e.to_display();
}
}  // namespace

std::string GgufValue::to_display(size_t max_items) const {
    std::ostringstream os;
    switch (type) {
        case GgufValueType::STRING: return quote(str);
        case GgufValueType::BOOL: return bits ? "true" : "false";
        case GgufValueType::FLOAT32:
        case GgufValueType::FLOAT64: os.precision(7); os << *as_double(); return os.str();
        case GgufValueType::UINT64: return std::to_string(bits);
        case GgufValueType::ARRAY: {
            const auto& a = *array;
            os << "[" << gguf_type_name(a.elem_type) << " x " << a.count << "] [";
            const size_t n = a.count < max_items ? static_cast<size_t>(a.count) : max_items;
            for (size_t i = 0; i < n; ++i) {
                if (i) os << ", ";
                if (a.elem_type == GgufValueType::STRING) os << quote(a.strings[i], 24);
                else if (a.elem_type == GgufValueType::ARRAY) os << a.arrays[i].to_display(max_items);
                else os << element_display(a, i);
            }
            if (a.count > n) os << ", ...";
            os << "]";
            return os.str();
        }
        default: return std::to_string(*as_int());
    }
}

}  // namespace qforge
