// `qforge quantize`: a whole model to one of llama.cpp's file types (its per-tensor mixes).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qforge/gguf.hpp"
#include "qforge/types.hpp"

namespace qforge {

// llama.cpp's file types ("ftype"): the name users type, the id stored in general.file_type and
// the tensor type most weights get.
struct Ftype {
    const char* name;
    uint32_t id;
    GgmlType default_type;
    const char* description;
};
const std::vector<Ftype>& all_ftypes();
const Ftype* find_ftype(std::string_view name);  // case-insensitive; Q4_K means Q4_K_M etc.
const Ftype* find_ftype_by_id(uint32_t id);

// An importance matrix: per weight matrix, one mean squared activation per input column.
struct Imatrix {
    std::map<std::string, std::vector<float>> entries;  // already divided by the call count
    std::string dataset;
    int chunks = 0;
};
// llama.cpp's legacy binary .dat format (what llama-imatrix wrote in early 2025).
Imatrix load_imatrix(const std::string& path);

// A tensor to be written: its final name and shape, the type of the bytes read() produces.
struct SourceTensor {
    std::string name;
    std::vector<int64_t> ne;
    GgmlType type;
    std::function<void(uint8_t* dst)> read;  // fills n_bytes() bytes
    // The type `convert --outtype auto` gives it when not its own (MLX 8/6/3/2-bit codes read as
    // floats: the nearest ggml type, requantized).
    std::optional<GgmlType> auto_type;
    uint64_t n_bytes() const;
    int64_t n_elements() const;
};

struct SourceModel {
    std::string path;           // for messages
    std::vector<std::string> inputs;  // files the output must not overwrite
    std::vector<GgufKV> metadata;
    std::vector<SourceTensor> tensors;
    std::string architecture() const;
    std::optional<int64_t> get_int(const std::string& key) const;
};

// Wrap a GGUF file (kept open by the caller) as a source.
SourceModel source_from_gguf(const GgufFile& f);

// Called with a tensor's f32 values (nrows x ncols) before they are quantized to `to`: returns
// true when it wrote the quantized bytes to `out` itself (GPTQ), false to leave them to the
// format's quantizer.
using QuantizeAdjust = std::function<bool(const std::string& name, GgmlType to, float* values, int64_t nrows, int64_t ncols, uint8_t* out)>;

struct QuantizeOptions {
    std::string ftype = "Q4_K_M";
    int threads = 0;  // 0: hardware concurrency
    const Imatrix* imatrix = nullptr;
    std::string imatrix_file;  // stored in quantize.imatrix.file
    std::optional<GgmlType> output_tensor_type;
    std::optional<GgmlType> token_embedding_type;
    std::vector<std::pair<std::string, GgmlType>> tensor_types;  // regex -> type, first match wins
    bool pure = false;
    bool leave_output_tensor = false;
    bool allow_requantize = false;
    bool dry_run = false;
    bool sort_tensors = true;  // llama-quantize's order: non-layer tensors, then by layer number
    QuantizeAdjust adjust;
};

struct QuantizedTensorInfo {
    std::string name;
    std::vector<int64_t> ne;
    GgmlType from, to;
    uint64_t bytes_in, bytes_out;
};

struct QuantizeReport {
    std::vector<QuantizedTensorInfo> tensors;
    uint64_t bytes_in = 0, bytes_out = 0;
    uint64_t file_size = 0;
    double seconds = 0;
};

// Stream tensors into a writer whose header is written, converting each to infos[i].to
// (imatrix[i] may be null). Shows a progress bar labelled `label`.
void write_tensors(GgufWriter& w, const std::vector<const SourceTensor*>& order, const std::vector<QuantizedTensorInfo>& infos,
                   const std::vector<const std::vector<float>*>& imatrix, int threads, const char* label, const std::string& source,
                   const QuantizeAdjust& adjust = {});

// Choose every tensor's type (llama-quantize's rules), then stream the output GGUF.
QuantizeReport quantize_model(const SourceModel& src, const std::string& out_path, const QuantizeOptions& opt);

}  // namespace qforge
