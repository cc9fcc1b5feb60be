// safetensors reader (single file and sharded with model.safetensors.index.json) and writer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "qforge/mapped_file.hpp"

namespace qforge {

enum class StDtype { F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2 };

const char* st_dtype_name(StDtype d);  // "BF16"
size_t st_dtype_size(StDtype d);
std::optional<StDtype> st_dtype_from_name(const std::string& s);

struct StTensor {
    std::string name;
    StDtype dtype = StDtype::F32;
    std::vector<int64_t> shape;  // row-major, outermost first (PyTorch order)
    uint64_t begin = 0, end = 0; // data_offsets, relative to the data section
    const uint8_t* data = nullptr;
    uint64_t n_bytes() const { return end - begin; }
    int64_t n_elements() const;
    std::span<const uint8_t> bytes() const { return {data, static_cast<size_t>(end - begin)}; }
};

// How a header was laid out, so that a file can be rewritten byte for byte.
struct StLayout {
    bool sorted_keys = false;    // header keys sorted by name (MLX); else __metadata__ then data order
    bool sorted_fields = false;  // "data_offsets","dtype","shape" (MLX); else "dtype","shape","data_offsets"
    bool pad_to_8 = true;        // header padded with spaces to a multiple of 8 bytes
};

class SafetensorsFile {
public:
    static std::unique_ptr<SafetensorsFile> open(const std::string& path);
    static std::unique_ptr<SafetensorsFile> parse(std::span<const uint8_t> bytes, const std::string& name);

    const std::string& path() const { return name_; }
    uint64_t file_size() const { return bytes_.size(); }
    // Tensors in data order (ascending offsets).
    const std::vector<StTensor>& tensors() const { return tensors_; }
    const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
    bool has_metadata() const { return has_metadata_; }
    const StTensor* find(const std::string& name) const;
    const StLayout& layout() const { return layout_; }

private:
    SafetensorsFile() = default;
    void parse_all();
    MappedFile file_;
    std::span<const uint8_t> bytes_;
    std::string name_;
    std::vector<StTensor> tensors_;
    std::vector<std::pair<std::string, std::string>> metadata_;
    bool has_metadata_ = false;
    StLayout layout_;
};

// All tensors of a model: one file, or the shards named by model.safetensors.index.json.
class SafetensorsModel {
public:
    // path: a .safetensors file, an index .json, or a directory holding either.
    static SafetensorsModel open(const std::string& path);
    // In converter order: shards in file-name order, tensors in each shard's header (sorted) order.
    const std::vector<const StTensor*>& tensors() const { return order_; }
    const StTensor* find(const std::string& name) const;
    const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
    uint64_t total_bytes() const;

private:
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::vector<const StTensor*> order_;
    std::map<std::string, const StTensor*> by_name_;
};

// Streaming writer: declare every tensor, then write their data in the declared order.
class SafetensorsWriter {
public:
    SafetensorsWriter(const std::string& path, const std::vector<std::string>& inputs = {}, StLayout layout = {});
    ~SafetensorsWriter();
    void set_metadata(std::vector<std::pair<std::string, std::string>> metadata);  // "__metadata__"
    void add_tensor(const std::string& name, StDtype dtype, const std::vector<int64_t>& shape);
    void write_header();
    void write_tensor_data(const void* data, size_t n);
    void finish();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace qforge
