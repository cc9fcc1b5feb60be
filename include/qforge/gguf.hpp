// GGUF (v2 and v3) reader and streaming writer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qforge/mapped_file.hpp"
#include "qforge/types.hpp"

namespace qforge {

enum class GgufValueType : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
    STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

const char* gguf_type_name(GgufValueType t);  // "UINT32", as gguf-py names them
size_t gguf_scalar_size(GgufValueType t);       // 0 for STRING and ARRAY

struct GgufValue;

struct GgufArray {
    GgufValueType elem_type = GgufValueType::UINT8;
    uint64_t count = 0;
    std::vector<uint8_t> raw;            // numeric/bool elements, little-endian, as in the file
    std::vector<std::string> strings;    // STRING elements
    std::vector<GgufValue> arrays;       // nested ARRAY elements
};

struct GgufValue {
    GgufValueType type = GgufValueType::UINT8;
    uint64_t bits = 0;  // scalar value, little-endian bits zero-extended to 64
    std::string str;    // STRING
    std::shared_ptr<GgufArray> array;  // ARRAY

    static GgufValue u8(uint8_t v);
    static GgufValue i8(int8_t v);
    static GgufValue u16(uint16_t v);
    static GgufValue i16(int16_t v);
    static GgufValue u32(uint32_t v);
    static GgufValue i32(int32_t v);
    static GgufValue u64(uint64_t v);
    static GgufValue i64(int64_t v);
    static GgufValue f32(float v);
    static GgufValue f64(double v);
    static GgufValue boolean(bool v);
    static GgufValue string(std::string v);
    static GgufValue string_array(std::vector<std::string> v);
    template <class Num>
    static GgufValue numeric_array(GgufValueType elem, const std::vector<Num>& v);

    bool is_integer() const;
    bool is_float() const { return type == GgufValueType::FLOAT32 || type == GgufValueType::FLOAT64; }
    std::optional<int64_t> as_int() const;    // any integer type or bool
    std::optional<double> as_double() const;  // any numeric type
    const std::string* as_string() const { return type == GgufValueType::STRING ? &str : nullptr; }
    std::string to_display(size_t max_items = 8) const;  // for inspect
};

struct GgufKV {
    std::string key;
    GgufValue value;
};

struct GgufTensorInfo {
    std::string name;
    std::vector<int64_t> ne;  // ggml order: ne[0] is the row length
    GgmlType type = GgmlType::F32;
    uint64_t offset = 0;      // relative to the data section
    uint64_t n_bytes = 0;
    const uint8_t* data = nullptr;  // zero-copy view into the mapped file
    int64_t n_elements() const;
    std::span<const uint8_t> bytes() const { return {data, static_cast<size_t>(n_bytes)}; }
};

class GgufFile {
public:
    static std::unique_ptr<GgufFile> open(const std::string& path);
    // Parse bytes that stay alive while the result is used (fuzzing, tests). name is for errors.
    static std::unique_ptr<GgufFile> parse(std::span<const uint8_t> bytes, const std::string& name);

    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    uint64_t file_size() const { return bytes_.size(); }
    const std::string& path() const { return name_; }
    const std::vector<GgufKV>& metadata() const { return kv_; }
    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufValue* find(const std::string& key) const;
    const GgufTensorInfo* find_tensor(const std::string& name) const;
    std::optional<std::string> get_string(const std::string& key) const;
    std::optional<int64_t> get_int(const std::string& key) const;
    std::optional<double> get_double(const std::string& key) const;
    void advise_willneed() const { file_.advise_willneed(); }

private:
    GgufFile() = default;
    void parse_all();
    MappedFile file_;
    std::span<const uint8_t> bytes_;
    std::string name_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<GgufKV> kv_;
    std::vector<GgufTensorInfo> tensors_;
};

// Streaming writer: metadata and tensor infos first, then tensor data in the same order, each
// padded to the alignment. Output goes to a temporary file renamed into place by finish().
class GgufWriter {
public:
    GgufWriter(const std::string& path, const std::vector<std::string>& inputs = {}, uint32_t version = 3);
    ~GgufWriter();

    void add_kv(const std::string& key, GgufValue value);  // replaces an existing key in place
    void remove_kv(const std::string& key);
    void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne);
    const std::vector<GgufKV>& metadata() const { return kv_; }

    // Writes the header; no kv or tensor may be added afterwards.
    void write_header();
    // Data of the next tensor, in add_tensor order; may come in several pieces.
    void write_tensor_data(const void* data, size_t n);
    void finish();
    // Size the file will have (valid after all add_tensor calls).
    uint64_t predicted_size() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::vector<GgufKV> kv_;
};

// Write the serialized payload of a value (without its type tag), as it is stored in a file.
void gguf_serialize_value(const GgufValue& v, std::vector<uint8_t>& out);

}  // namespace qforge
