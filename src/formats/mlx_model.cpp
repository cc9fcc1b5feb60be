#include "qforge/mlx_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <regex>

#include "formats/json_file.hpp"
#include "qforge/error.hpp"
#include "qforge/gguf.hpp"
#include "qforge/half.hpp"
#include "qforge/output_file.hpp"
#include "qforge/progress.hpp"
#include "qforge/quantize.hpp"
#include "qforge/safetensors.hpp"
#include "qforge/thread_pool.hpp"
#include "quant/blocks.hpp"
#include "tokenizer/pretokenize.hpp"

namespace qforge {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

// One ggml block of 32 as MLX sees it: unsigned codes, scale and bias (w = scale * code + bias).
struct Block32 {
    uint32_t u[32];
    float scale, bias;
};

template <class B, int kHigh>
void nibble_codes(const B& b, uint32_t* u) {
    uint32_t qh = 0;
    if constexpr (kHigh) std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < 16; ++j) {
        u[j] = (b.qs[j] & 0x0Fu) | (((qh >> j) & 1u) << 4);
        u[j + 16] = (b.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4);
    }
}

// A nibble format's block: kHigh adds the fifth bit; kOffset > 0 is the symmetric formats' zero
// code (bias -offset*d), 0 means the block stores its minimum m.
template <class B, int kHigh, int kOffset>
void decode_nibbles(const uint8_t* p, Block32& o) {
    const auto& b = *reinterpret_cast<const B*>(p);
    nibble_codes<B, kHigh>(b, o.u);
    o.scale = fp16_to_fp32(b.d);
    if constexpr (kOffset > 0) o.bias = -static_cast<float>(kOffset) * o.scale;
    else o.bias = fp16_to_fp32(b.m);
}

bool decode_block(GgmlType t, const uint8_t* p, Block32& o) {
    switch (t) {
        case GgmlType::Q4_0: decode_nibbles<BlockQ4_0, 0, 8>(p, o); return true;
        case GgmlType::Q4_1: decode_nibbles<BlockQ4_1, 0, 0>(p, o); return true;
        case GgmlType::Q5_0: decode_nibbles<BlockQ5_0, 1, 16>(p, o); return true;
        case GgmlType::Q5_1: decode_nibbles<BlockQ5_1, 1, 0>(p, o); return true;
        case GgmlType::Q8_0: {
            const auto& b = *reinterpret_cast<const BlockQ8_0*>(p);
            for (int j = 0; j < 32; ++j) o.u[j] = static_cast<uint32_t>(b.qs[j] + 128);
            o.scale = fp16_to_fp32(b.d);
            o.bias = -128.f * o.scale;
            return true;
        }
        default: return false;
    }
}

// Q4_K / Q5_K super-block i -> its eight groups of 32: scale d*sc, bias -(dmin*m), codes 0..15/31.
template <class B, bool kFive>
void decode_k(const B& x, Block32* out) {
    uint8_t sc[8], mn[8];
    unpack_k4_scales(x.scales, sc, mn);
    const float d = fp16_to_fp32(x.d), dmin = fp16_to_fp32(x.dmin);
    for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 32; ++l) {
            uint32_t lo = x.qs[32 * j + l] & 0x0Fu, hi = x.qs[32 * j + l] >> 4;
            if constexpr (kFive) {
                lo |= ((x.qh[l] >> (2 * j)) & 1u) << 4;
                hi |= ((x.qh[l] >> (2 * j + 1)) & 1u) << 4;
            }
            out[2 * j].u[l] = lo;
            out[2 * j + 1].u[l] = hi;
        }
    for (int k = 0; k < 8; ++k) {
        out[k].scale = d * static_cast<float>(sc[k]);
        out[k].bias = -(dmin * static_cast<float>(mn[k]));
    }
}

// Every group of 32 of a row, in order.
template <class Fn>
void for_each_group(GgmlType t, const uint8_t* row, int64_t cols, Fn fn) {
    Block32 b[8] = {};
    if (t == GgmlType::Q4_K || t == GgmlType::Q5_K) {
        for (int64_t i = 0; i < cols / QK_K; ++i) {
            if (t == GgmlType::Q4_K) decode_k<BlockQ4_K, false>(reinterpret_cast<const BlockQ4_K*>(row)[i], b);
            else decode_k<BlockQ5_K, true>(reinterpret_cast<const BlockQ5_K*>(row)[i], b);
            for (int k = 0; k < 8; ++k) fn(i * 8 + k, b[k]);
        }
        return;
    }
    const size_t bs = type_traits(t).type_size;
    for (int64_t g = 0; g < cols / 32; ++g) {
        decode_block(t, row + static_cast<size_t>(g) * bs, b[0]);
        fn(g, b[0]);
    }
}

int bits_of(GgmlType t) {
    switch (t) {
        case GgmlType::Q4_K: return 4;
        case GgmlType::Q5_K: return 5;
        case GgmlType::Q4_0:
        case GgmlType::Q4_1: return 4;
        case GgmlType::Q5_0:
        case GgmlType::Q5_1: return 5;
        case GgmlType::Q8_0: return 8;
        default: return 0;
    }
}

bool fits_f16(float v) { return std::isfinite(v) && fp16_to_fp32(fp32_to_fp16(v)) == v; }

}  // namespace

MlxAffineTensor mlx_affine_empty(const MlxAffineParams& p, int64_t rows, int64_t cols) {
    MlxAffineTensor q;
    q.p = p;
    q.rows = rows;
    q.cols = cols;
    q.wq.assign(static_cast<size_t>(rows * cols * p.bits / 32), 0u);
    q.scales.assign(static_cast<size_t>(rows * (cols / p.group_size)) * mlx_dtype_size(p.dtype), 0);
    q.biases.assign(q.scales.size(), 0);
    return q;
}

std::vector<float> mlx_dequantize_f32(const MlxAffineTensor& t) {
    const size_t n = static_cast<size_t>(t.rows * t.cols);
    std::vector<uint8_t> raw(n * mlx_dtype_size(t.p.dtype));
    mlx_affine_dequantize(t.wq.data(), t.scales.data(), t.biases.data(), t.rows, t.cols, t.p, raw.data());
    std::vector<float> out(n);
    for (size_t i = 0; i < n; ++i) out[i] = mlx_load(t.p.dtype, raw.data(), i);
    return out;
}

std::optional<GgufToMlx> gguf_to_mlx(GgmlType type, const uint8_t* data, int64_t rows, int64_t cols, MlxDtype dtype) {
    const int bits = bits_of(type);
    if (!bits || cols % type_traits(type).block_size != 0) return std::nullopt;
    const TypeTraits& tt = type_traits(type);
    const size_t rb = *row_bytes(tt, cols);
    GgufToMlx r;
    MlxAffineTensor& t = r.t;
    t.p = {bits, 32, dtype};
    t.rows = rows;
    t.cols = cols;
    const int64_t words = cols * bits / 32, groups = cols / 32;
    t.wq.assign(static_cast<size_t>(rows * words), 0u);
    t.scales.resize(static_cast<size_t>(rows * groups) * mlx_dtype_size(dtype));
    t.biases.resize(t.scales.size());
    for (int64_t row = 0; row < rows; ++row)
        for_each_group(type, data + static_cast<size_t>(row) * rb, cols, [&](int64_t g, const Block32& b) {
            for (int j = 0; j < 32; ++j) mlx_put_code(t.wq.data() + row * words, g * 32 + j, bits, b.u[j]);
            mlx_store(dtype, t.scales.data(), static_cast<size_t>(row * groups + g), b.scale);
            mlx_store(dtype, t.biases.data(), static_cast<size_t>(row * groups + g), b.bias);
        });
    const auto mine = mlx_dequantize_f32(t);
    const auto ref = dequantize(type, std::vector<uint8_t>(data, data + rb * static_cast<size_t>(rows)), rows * cols);
    r.exact = true;
    for (size_t i = 0; i < ref.size(); ++i) {
        if (mine[i] != ref[i]) r.exact = false;  // values: (q-8)*d may be -0 where MLX's q*d - 8d is +0
        r.max_abs_err = std::max(r.max_abs_err, static_cast<double>(std::fabs(mine[i] - ref[i])));
    }
    return r;
}

std::optional<std::vector<uint8_t>> mlx_to_gguf(const MlxAffineTensor& t, GgmlType* type, std::string* why) {
    auto fail = [&](const std::string& w) -> std::optional<std::vector<uint8_t>> {
        if (why) *why = w;
        return std::nullopt;
    };
    if (t.p.bits != 4 && t.p.bits != 5) return fail(std::to_string(t.p.bits) + "-bit codes have no ggml block format");
    if (t.p.group_size % 32 != 0) return fail("group size " + std::to_string(t.p.group_size) + " is not a multiple of 32");
    const int64_t groups = t.cols / t.p.group_size;
    for (size_t i = 0; i < static_cast<size_t>(t.rows * groups); ++i) {
        const float s = mlx_load(t.p.dtype, t.scales.data(), i), b = mlx_load(t.p.dtype, t.biases.data(), i);
        if (!fits_f16(s) || !fits_f16(b)) return fail("a scale or bias (" + std::to_string(fits_f16(s) ? b : s) + ") is not representable in f16");
    }
    const GgmlType out = t.p.bits == 4 ? GgmlType::Q4_1 : GgmlType::Q5_1;
    if (type) *type = out;
    const size_t rb = *row_bytes(type_traits(out), t.cols);
    std::vector<uint8_t> data(rb * static_cast<size_t>(t.rows));
    const int64_t words = t.cols * t.p.bits / 32;
    for (int64_t row = 0; row < t.rows; ++row)
        for (int64_t blk = 0; blk < t.cols / 32; ++blk) {
            const size_t gi = static_cast<size_t>(row * groups + blk * 32 / t.p.group_size);
            const uint16_t d = fp32_to_fp16(mlx_load(t.p.dtype, t.scales.data(), gi)), m = fp32_to_fp16(mlx_load(t.p.dtype, t.biases.data(), gi));
            uint32_t u[32];
            for (int j = 0; j < 32; ++j) u[j] = mlx_get_code(t.wq.data() + row * words, blk * 32 + j, t.p.bits);
            uint8_t* o = data.data() + static_cast<size_t>(row) * rb;
            if (out == GgmlType::Q4_1) {
                auto& b = reinterpret_cast<BlockQ4_1*>(o)[blk];
                b.d = d;
                b.m = m;
                for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(u[j] | (u[j + 16] << 4));
            } else {
                auto& b = reinterpret_cast<BlockQ5_1*>(o)[blk];
                b.d = d;
                b.m = m;
                uint32_t qh = 0;
                for (int j = 0; j < 16; ++j) {
                    b.qs[j] = static_cast<uint8_t>((u[j] & 0x0F) | ((u[j + 16] & 0x0F) << 4));
                    qh |= ((u[j] >> 4) & 1u) << j;
                    qh |= ((u[j + 16] >> 4) & 1u) << (j + 16);
                }
                std::memcpy(b.qh, &qh, 4);
            }
        }
    return data;
}

// ---- writing an mlx-lm directory ------------------------------------------------------------------

namespace {

std::optional<MlxDtype> mlx_dtype_of(StDtype d) {
    switch (d) {
        case StDtype::F32: return MlxDtype::F32;
        case StDtype::F16: return MlxDtype::F16;
        case StDtype::BF16: return MlxDtype::BF16;
        default: return std::nullopt;
    }
}

StDtype st_dtype_of(MlxDtype d) { return d == MlxDtype::F32 ? StDtype::F32 : d == MlxDtype::F16 ? StDtype::F16 : StDtype::BF16; }

GgmlType ggml_of(StDtype d) { return d == StDtype::F32 ? GgmlType::F32 : d == StDtype::F16 ? GgmlType::F16 : GgmlType::BF16; }

// Modules mlx-lm quantizes: Linear layers (…_proj, lm_head) and the token embedding.
bool quantizable_module(const std::string& module) {
    return module.ends_with("_proj") || module.ends_with("lm_head") || module.ends_with("embed_tokens");
}

std::vector<float> read_floats(const StTensor& t) {
    if (!mlx_dtype_of(t.dtype)) throw_bad_input(t.name, std::string("unsupported dtype ") + st_dtype_name(t.dtype) + " (expected F32, F16 or BF16)");
    std::vector<float> v(static_cast<size_t>(t.n_elements()));
    dequantize(ggml_of(t.dtype), t.data, v.data(), t.n_elements());
    return v;
}

// One entry of the directory: a float tensor (name "P.weight", "P.bias", …) or a quantized module
// (name "P": P.weight, P.scales, P.biases). Data are made when written, one entry at a time.
struct MlxItem {
    std::string name;
    bool quantized = false;
    std::vector<int64_t> shape;  // the float tensor's; for a module [rows, cols]
    MlxAffineParams p;           // a module's
    std::optional<MlxFp4Mode> fp4;  // mxfp4 / nvfp4 instead of affine: uint8 scales, no biases
    std::function<std::vector<float>()> floats;                       // float tensors
    std::function<MlxAffineTensor(MlxTensorReport&)> quantize;        // modules: data and report
};

int threads_or_all(int threads) { return threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

// Quantizes f32 values (already in the target dtype's precision) as MLX does, rows in parallel.
MlxAffineTensor quantize_rows_mlx(const std::vector<float>& v, int64_t rows, int64_t cols, const MlxAffineParams& p, ThreadPool& pool) {
    MlxAffineTensor q = mlx_affine_empty(p, rows, cols);
    const int64_t words = cols * p.bits / 32, groups = cols / p.group_size;
    const size_t ds = mlx_dtype_size(p.dtype);
    pool.parallel_for(rows, [&](int64_t r0, int64_t r1, int) {
        mlx_affine_quantize(v.data() + r0 * cols, r1 - r0, cols, p, q.wq.data() + r0 * words, q.scales.data() + static_cast<size_t>(r0 * groups) * ds,
                            q.biases.data() + static_cast<size_t>(r0 * groups) * ds);
    });
    return q;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double e = 0;
    for (size_t i = 0; i < a.size(); ++i) e = std::max(e, static_cast<double>(std::fabs(a[i] - b[i])));
    return e;
}

// Writes the directory: model.safetensors (keys sorted, metadata format: mlx), config.json, and
// whatever `extra` puts beside them (tokenizer files); into a temporary directory renamed at the end.
std::vector<MlxTensorReport> write_mlx_dir(const fs::path& out, const nlohmann::ordered_json& cfg, std::vector<MlxItem> items, MlxDtype dtype,
                                           const std::vector<std::string>& inputs, uint64_t max_shard_bytes,
                                           const std::function<void(const fs::path&)>& extra) {
    std::error_code ec;
    if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec)))
        throw_usage(out.string() + ": already exists (mlx-lm writes a new directory; remove it or choose another)");
    std::sort(items.begin(), items.end(), [](const MlxItem& a, const MlxItem& b) { return a.name < b.name; });
    // Tensor names in sorted order: a module's .biases < .scales < .weight sort together.
    struct Slot {
        std::string name;
        StDtype dtype;
        std::vector<int64_t> shape;
        size_t item;
        int part;  // 0 float, 1 weight, 2 scales, 3 biases
    };
    std::vector<Slot> slots;
    for (size_t i = 0; i < items.size(); ++i) {
        const MlxItem& it = items[i];
        if (!it.quantized) {
            slots.push_back({it.name, st_dtype_of(dtype), it.shape, i, 0});
            continue;
        }
        const int64_t rows = it.shape[0], cols = it.shape[1];
        slots.push_back({it.name + ".weight", StDtype::U32, {rows, cols * it.p.bits / 32}, i, 1});
        slots.push_back({it.name + ".scales", it.fp4 ? StDtype::U8 : st_dtype_of(it.p.dtype), {rows, cols / it.p.group_size}, i, 2});
        if (!it.fp4) slots.push_back({it.name + ".biases", st_dtype_of(it.p.dtype), {rows, cols / it.p.group_size}, i, 3});
    }
    std::sort(slots.begin(), slots.end(), [](const Slot& a, const Slot& b) { return a.name < b.name; });

    const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
    const fs::path tmp = parent / ("." + out.filename().string() + ".tmp");
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    if (ec) throw_resource(tmp.string(), "cannot create directory (" + ec.message() + ")");
    // Shards of at most max_shard_bytes, tensors in sorted order (a tensor never splits).
    std::vector<size_t> shard_of(slots.size());
    std::vector<uint64_t> shard_bytes{0};
    uint64_t total = 0;
    for (size_t i = 0; i < slots.size(); ++i) {
        int64_t n = 1;
        for (int64_t d : slots[i].shape) n *= d;
        const uint64_t b = static_cast<uint64_t>(n) * (slots[i].dtype == StDtype::U32 || slots[i].dtype == StDtype::F32 ? 4 : slots[i].dtype == StDtype::U8 ? 1 : 2);
        if (shard_bytes.back() > 0 && shard_bytes.back() + b > max_shard_bytes) shard_bytes.push_back(0);
        shard_bytes.back() += b;
        shard_of[i] = shard_bytes.size() - 1;
        total += b;
    }
    const size_t n_shards = shard_bytes.size();
    auto shard_name = [&](size_t k) {
        if (n_shards == 1) return std::string("model.safetensors");
        char buf[64];
        std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", k + 1, n_shards);
        return std::string(buf);
    };
    std::vector<MlxTensorReport> report;
    try {
        std::unique_ptr<SafetensorsWriter> w;
        size_t open_shard = n_shards;
        auto open = [&](size_t k) {
            if (w) w->finish();
            w = std::make_unique<SafetensorsWriter>((tmp / shard_name(k)).string(), inputs, StLayout{true, true});
            w->set_metadata({{"format", "mlx"}});
            for (size_t i = 0; i < slots.size(); ++i)
                if (shard_of[i] == k) w->add_tensor(slots[i].name, slots[i].dtype, slots[i].shape);
            w->write_header();
            open_shard = k;
        };
        Progress progress("mlx", slots.size());
        size_t cached = items.size();
        MlxAffineTensor q;
        for (size_t si = 0; si < slots.size(); ++si) {
            const Slot& sl = slots[si];
            if (open_shard != shard_of[si]) open(shard_of[si]);
            SafetensorsWriter& wr = *w;
            const MlxItem& it = items[sl.item];
            if (sl.part == 0) {
                const std::vector<float> v = it.floats();
                std::vector<uint8_t> bytes(v.size() * mlx_dtype_size(dtype));
                double err = 0;
                for (size_t k = 0; k < v.size(); ++k) {
                    mlx_store(dtype, bytes.data(), k, v[k]);
                    err = std::max(err, static_cast<double>(std::fabs(mlx_load(dtype, bytes.data(), k) - v[k])));
                }
                wr.write_tensor_data(bytes.data(), bytes.size());
                report.push_back({it.name, mlx_dtype_name(dtype), err == 0, err});
            } else {
                if (cached != sl.item) {  // make the module once for its three tensors
                    cached = sl.item;
                    MlxTensorReport r{it.name, "", false, 0};
                    q = it.quantize(r);
                    report.push_back(r);
                }
                if (sl.part == 1) wr.write_tensor_data(q.wq.data(), q.wq.size() * 4);
                else if (sl.part == 2) wr.write_tensor_data(q.scales.data(), q.scales.size());
                else wr.write_tensor_data(q.biases.data(), q.biases.size());
            }
            progress.add(1);
        }
        if (w) w->finish();
        progress.finish();
        {  // the index mlx-lm writes beside the weights (also for one file)
            nlohmann::ordered_json idx = nlohmann::ordered_json::object();
            int64_t params = 0;
            for (const auto& it : items) {
                int64_t n = 1;
                for (int64_t d : it.shape) n *= d;
                params += n;
            }
            idx["metadata"] = {{"total_size", total}, {"total_parameters", params}};
            nlohmann::ordered_json map = nlohmann::ordered_json::object();
            for (size_t i = 0; i < slots.size(); ++i) map[slots[i].name] = shard_name(shard_of[i]);
            idx["weight_map"] = map;
            write_json_file(tmp / "model.safetensors.index.json", idx, 4);
        }
        write_json_file(tmp / "config.json", cfg, 4);
        extra(tmp);
        if (fs::exists(out, ec)) fs::remove(out, ec);  // an empty directory
        fs::rename(tmp, out);
    } catch (...) {
        fs::remove_all(tmp, ec);
        throw;
    }
    return report;
}

std::optional<MlxFp4Mode> fp4_mode(const MlxConvertOptions& opt) {
    if (opt.mode == "affine") return std::nullopt;
    if (opt.mode == "mxfp4") return MlxFp4Mode::MXFP4;
    if (opt.mode == "nvfp4") return MlxFp4Mode::NVFP4;
    throw_usage("--mode must be affine, mxfp4 or nvfp4");
}

std::vector<std::regex> compile_excludes(const MlxConvertOptions& opt) {
    if (const auto m = fp4_mode(opt); m && opt.quantize) {
        if (opt.bits != 4) throw_usage("--mode " + opt.mode + " has 4-bit codes");
        if (opt.group_size != mlx_fp4_group_size(*m)) throw_usage("--mode " + opt.mode + " has groups of " + std::to_string(mlx_fp4_group_size(*m)));
        if (!opt.recipe.empty()) throw_usage("--recipe works with affine quantization only (as in mlx-lm)");
    } else if (opt.quantize) {
        if (opt.bits != 2 && opt.bits != 3 && opt.bits != 4 && opt.bits != 5 && opt.bits != 6 && opt.bits != 8)
            throw_usage("--bits must be 2, 3, 4, 5, 6 or 8");
        if (opt.group_size != 32 && opt.group_size != 64 && opt.group_size != 128) throw_usage("--group-size must be 32, 64 or 128");
    }
    std::vector<std::regex> excludes;
    for (const auto& e : opt.exclude) {
        try {
            excludes.emplace_back(e, std::regex::ECMAScript);
        } catch (const std::regex_error&) {
            throw_usage("--exclude: not a valid regular expression: " + e);
        }
    }
    return excludes;
}

bool matches_any(const std::vector<std::regex>& res, const std::string& s) {
    return std::any_of(res.begin(), res.end(), [&](const std::regex& r) { return std::regex_search(s, r); });
}

void add_quantization(nlohmann::ordered_json& cfg, const MlxConvertOptions& opt) {
    if (!opt.quantize) return;
    nlohmann::ordered_json qc = nlohmann::ordered_json::object();
    qc["group_size"] = opt.group_size;
    qc["bits"] = opt.bits;
    qc["mode"] = opt.mode;
    cfg["quantization"] = qc;
    cfg["quantization_config"] = qc;
}

// The bits a recipe gives a module (mlx-lm's mixed_quant_predicate_builder rules), or 0 when
// there is no recipe.
int recipe_bits(const std::string& recipe, const std::string& module, int n_layers) {
    if (recipe.empty()) return 0;
    int low, high = 6;
    if (recipe == "mixed_2_6") low = 2;
    else if (recipe == "mixed_3_4") low = 3, high = 4;
    else if (recipe == "mixed_3_6") low = 3;
    else if (recipe == "mixed_4_6") low = 4;
    else throw_usage("--recipe: unknown recipe '" + recipe + "' (mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6)");
    int index = 0;  // the layer number in "model.layers.N…"
    if (module.starts_with("model.layers.")) index = std::atoi(module.c_str() + 13);
    const bool more = index < n_layers / 8 || index >= 7 * n_layers / 8 || (index - n_layers / 8) % 3 == 2;
    if ((module.find("v_proj") != std::string::npos || module.find("down_proj") != std::string::npos) && more) return high;
    if (module.find("lm_head") != std::string::npos) return high;
    return low;
}

}  // namespace

bool is_mlx_quantized_dir(const std::string& dir) {
    const fs::path cfg = fs::path(dir) / "config.json";
    std::error_code ec;
    if (!fs::exists(cfg, ec)) return false;
    const json c = read_json_file<json>(cfg);
    return c.contains("quantization") && c["quantization"].is_object();
}

std::vector<MlxTensorReport> convert_hf_to_mlx(const std::string& hf_dir, const std::string& out_dir, const MlxConvertOptions& opt) {
    const fs::path in(hf_dir);
    if (!fs::is_directory(in)) throw_bad_input(hf_dir, "not a directory (expected a Hugging Face model directory)");
    if (!fs::exists(in / "config.json")) throw_bad_input(hf_dir, "no config.json in this directory");
    const auto excludes = compile_excludes(opt);
    json cfg = read_json_file<json>(in / "config.json");
    if (cfg.contains("quantization")) throw_usage(hf_dir + ": already an MLX-quantized model (convert it to GGUF instead)");
    const std::string arch = cfg.contains("architectures") && cfg["architectures"].is_array() && !cfg["architectures"].empty()
                                 ? cfg["architectures"][0].get<std::string>()
                                 : "";
    if (arch != "LlamaForCausalLM" && arch != "MistralForCausalLM" && arch != "Qwen2ForCausalLM")
        throw_bad_input((in / "config.json").string(),
                        "unsupported architecture '" + arch + "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
    const SafetensorsModel weights = SafetensorsModel::open(hf_dir);

    // The dtype of float weights and scales: --dtype, else the source's (its first 2-D tensor).
    MlxDtype dtype = MlxDtype::F16;
    if (opt.dtype) {
        dtype = *opt.dtype;
    } else {
        for (const StTensor* t : weights.tensors())
            if (t->shape.size() == 2)
                if (const auto d = mlx_dtype_of(t->dtype)) {
                    dtype = *d;
                    break;
                }
    }
    ThreadPool pool(threads_or_all(opt.threads));
    const int n_layers = cfg.value("num_hidden_layers", 0);
    recipe_bits(opt.recipe, "", n_layers);  // an unknown recipe fails before anything is written
    std::vector<std::pair<std::string, int>> recipe_entries;
    std::vector<MlxItem> items;
    for (const StTensor* t : weights.tensors()) {
        if (!mlx_dtype_of(t->dtype)) throw_bad_input(t->name, std::string("unsupported dtype ") + st_dtype_name(t->dtype));
        const bool is_weight = t->name.ends_with(".weight");
        const std::string module = is_weight ? t->name.substr(0, t->name.size() - 7) : "";
        MlxItem it;
        if (opt.quantize && is_weight && t->shape.size() == 2 && quantizable_module(module) && t->shape[1] % opt.group_size == 0 &&
            !matches_any(excludes, module)) {
            it.name = module;
            it.quantized = true;
            it.shape = t->shape;
            const int rb = recipe_bits(opt.recipe, module, n_layers);
            it.p = {rb ? rb : opt.bits, opt.group_size, dtype};
            it.fp4 = fp4_mode(opt);
            if (rb) recipe_entries.emplace_back(module, rb);
            if (it.fp4) {
                it.quantize = [t, p = it.p, mode = *it.fp4](MlxTensorReport& r) {
                    std::vector<float> v = read_floats(*t);
                    for (auto& x : v) x = mlx_round(p.dtype, x);
                    MlxAffineTensor q;
                    q.p = p;
                    q.rows = t->shape[0];
                    q.cols = t->shape[1];
                    q.wq.assign(static_cast<size_t>(q.rows * q.cols / 8), 0u);
                    q.scales.assign(static_cast<size_t>(q.rows * q.cols / p.group_size), 0);
                    mlx_fp4_quantize(v.data(), q.rows, q.cols, mode, p.dtype, q.wq.data(), q.scales.data());
                    std::vector<uint8_t> deq(v.size() * mlx_dtype_size(p.dtype));
                    mlx_fp4_dequantize(q.wq.data(), q.scales.data(), q.rows, q.cols, mode, p.dtype, deq.data());
                    std::vector<float> back(v.size());
                    for (size_t k = 0; k < v.size(); ++k) back[k] = mlx_load(p.dtype, deq.data(), k);
                    const double err = max_abs_diff(back, v);
                    r.how = std::string("quantized ") + (mode == MlxFp4Mode::MXFP4 ? "mxfp4" : "nvfp4") + " " + mlx_dtype_name(p.dtype);
                    r.max_abs_err = err;
                    return q;
                };
                items.push_back(std::move(it));
                continue;
            }
            it.quantize = [t, p = it.p, &pool, &opt](MlxTensorReport& r) {
                std::vector<float> v = read_floats(*t);
                const std::string gname = gguf_name_of_hf(t->name);
                if (opt.transform) opt.transform(gname, v.data(), t->shape[0], t->shape[1]);
                if (opt.transform || *mlx_dtype_of(t->dtype) != p.dtype)
                    for (auto& x : v) x = mlx_round(p.dtype, x);
                const std::vector<float> orig = opt.calibrated ? v : std::vector<float>();
                std::optional<MlxAffineTensor> cq = opt.calibrated ? opt.calibrated(gname, v, t->shape[0], t->shape[1], p) : std::nullopt;
                MlxAffineTensor q = cq ? std::move(*cq) : quantize_rows_mlx(v, t->shape[0], t->shape[1], p, pool);
                r.how = std::string(cq ? "calibrated" : "quantized") + " affine " + std::to_string(p.bits) + "-bit g" +
                        std::to_string(p.group_size) + " " + mlx_dtype_name(p.dtype);
                r.max_abs_err = max_abs_diff(mlx_dequantize_f32(q), cq ? orig : v);
                return q;
            };
        } else {
            it.name = t->name;
            it.shape = t->shape;
            it.floats = [t, &opt] {
                std::vector<float> v = read_floats(*t);
                if (opt.transform) opt.transform(gguf_name_of_hf(t->name), v.data(), t->shape.size() < 2 ? 1 : t->shape[0], t->shape.back());
                return v;
            };
        }
        items.push_back(std::move(it));
    }
    add_quantization(cfg, opt);
    for (const auto& [module, bits] : recipe_entries) {  // mlx-lm records every module of a recipe
        cfg["quantization"][module] = {{"group_size", opt.group_size}, {"bits", bits}, {"mode", "affine"}};
        cfg["quantization_config"][module] = cfg["quantization"][module];
    }
    if (opt.dtype) cfg["torch_dtype"] = mlx_dtype_name(dtype);
    std::vector<std::string> inputs;
    for (const auto& f : weights.files()) inputs.push_back(f->path());
    return write_mlx_dir(fs::path(out_dir), cfg, std::move(items), dtype, inputs, opt.max_shard_bytes, [&](const fs::path& tmp) {
        std::error_code ec;
        for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "added_tokens.json",
                              "generation_config.json"})
            if (fs::exists(in / f, ec)) fs::copy_file(in / f, tmp / f, fs::copy_options::overwrite_existing);
    });
}

// ---- from a GGUF ----------------------------------------------------------------------------------

namespace {

// GGUF tensor name -> Hugging Face name (llama family, qwen2), "" for none.
constexpr std::pair<const char*, const char*> kLayerNames[] = {
    {"attn_norm.", "input_layernorm."},    {"ffn_norm.", "post_attention_layernorm."}, {"attn_q.", "self_attn.q_proj."},
    {"attn_k.", "self_attn.k_proj."},      {"attn_v.", "self_attn.v_proj."},           {"attn_output.", "self_attn.o_proj."},
    {"ffn_gate.", "mlp.gate_proj."},       {"ffn_up.", "mlp.up_proj."},                {"ffn_down.", "mlp.down_proj."},
};

}  // namespace

std::string hf_name(const std::string& g) {
    if (g == "token_embd.weight") return "model.embed_tokens.weight";
    if (g == "output_norm.weight") return "model.norm.weight";
    if (g == "output.weight") return "lm_head.weight";
    if (!g.starts_with("blk.")) return "";
    const size_t dot = g.find('.', 4);
    if (dot == std::string::npos) return "";
    const std::string layer = g.substr(4, dot - 4), rest = g.substr(dot + 1);
    for (const auto& [from, to] : kLayerNames)
        if (rest.starts_with(from)) return "model.layers." + layer + "." + to + rest.substr(std::strlen(from));
    return "";
}

std::string gguf_name_of_hf(const std::string& h) {
    if (h == "model.embed_tokens.weight") return "token_embd.weight";
    if (h == "model.norm.weight") return "output_norm.weight";
    if (h == "lm_head.weight") return "output.weight";
    static const std::string prefix = "model.layers.";
    if (!h.starts_with(prefix)) return "";
    const size_t dot = h.find('.', prefix.size());
    if (dot == std::string::npos) return "";
    const std::string layer = h.substr(prefix.size(), dot - prefix.size()), rest = h.substr(dot + 1);
    for (const auto& [to, from] : kLayerNames)
        if (rest.starts_with(from)) return "blk." + layer + "." + to + rest.substr(std::strlen(from));
    return "";
}

namespace {

// llama's GGUF Q/K rows (head, half, 2) back to Hugging Face's (head, 2, half).
std::vector<uint8_t> unpermute_rows(const uint8_t* src, int64_t rows, size_t row_bytes, int heads) {
    std::vector<uint8_t> out(static_cast<size_t>(rows) * row_bytes);
    if (heads == 0) {
        std::memcpy(out.data(), src, out.size());
        return out;
    }
    const int64_t half = rows / heads / 2;
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < half; ++i)
            for (int64_t j = 0; j < 2; ++j)
                std::memcpy(out.data() + static_cast<size_t>(h * 2 * half + j * half + i) * row_bytes,
                            src + static_cast<size_t>(h * 2 * half + i * 2 + j) * row_bytes, row_bytes);
    return out;
}

// tokenizer.json's post-processor that puts BOS (text `b`, id `bos`) before each sequence.
nlohmann::ordered_json bos_template(const std::string& b, int64_t bos) {
    using oj = nlohmann::ordered_json;
    const oj first = {{"SpecialToken", {{"id", b}, {"type_id", 0}}}}, second = {{"SpecialToken", {{"id", b}, {"type_id", 1}}}};
    return {{"type", "TemplateProcessing"},
            {"single", oj::array({first, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
            {"pair", oj::array({first, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, second, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
            {"special_tokens", {{b, {{"id", b}, {"ids", oj::array({bos})}, {"tokens", oj::array({b})}}}}}};
}

// A SentencePiece ("llama") GGUF vocabulary as Hugging Face's tokenizer.json: BPE with byte
// fallback, merges from the pieces' scores as transformers derives them from a SentencePiece model.
nlohmann::ordered_json spm_tokenizer_json(const std::vector<std::string>& tokens, const std::vector<float>& scores,
                                          const std::vector<int32_t>& types, int64_t unk, int64_t bos, bool add_bos) {
    using oj = nlohmann::ordered_json;
    std::map<std::string, int64_t> id_of;
    for (size_t i = 0; i < tokens.size(); ++i) id_of.emplace(tokens[i], static_cast<int64_t>(i));
    struct Merge {
        int64_t l, r;
        float score;
    };
    std::vector<Merge> merges;
    for (size_t i = 0; i < tokens.size(); ++i) {
        const std::string& t = tokens[i];
        std::vector<Merge> local;
        for (size_t k = 1; k < t.size(); ++k) {
            if ((static_cast<unsigned char>(t[k]) & 0xC0) == 0x80) continue;  // inside a UTF-8 character
            const auto l = id_of.find(t.substr(0, k)), r = id_of.find(t.substr(k));
            if (l != id_of.end() && r != id_of.end()) local.push_back({l->second, r->second, scores[i]});
        }
        std::sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) { return a.l != b.l ? a.l < b.l : a.r < b.r; });
        merges.insert(merges.end(), local.begin(), local.end());
    }
    std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
    oj vocab = oj::object();
    for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
    oj merge_list = oj::array();
    for (const auto& m : merges) merge_list.push_back(oj::array({tokens[static_cast<size_t>(m.l)], tokens[static_cast<size_t>(m.r)]}));
    oj added = oj::array();
    for (size_t i = 0; i < tokens.size(); ++i)
        if (types[i] == 3 || types[i] == 4 || static_cast<int64_t>(i) == unk)  // control, user-defined, unknown
            added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                             {"normalized", types[i] == 4}, {"special", types[i] != 4}});
    oj j = oj::object();
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    j["added_tokens"] = added;
    j["normalizer"] = {{"type", "Sequence"},
                       {"normalizers", oj::array({{{"type", "Prepend"}, {"prepend", "\u2581"}},
                                                  {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}})}};
    j["pre_tokenizer"] = nullptr;
    if (add_bos && bos >= 0) {
        j["post_processor"] = bos_template(tokens[static_cast<size_t>(bos)], bos);
    } else {
        j["post_processor"] = nullptr;
    }
    j["decoder"] = {{"type", "Sequence"},
                    {"decoders", oj::array({{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                                            {{"type", "ByteFallback"}},
                                            {{"type", "Fuse"}},
                                            {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
    j["model"] = {{"type", "BPE"},         {"dropout", nullptr},    {"unk_token", unk >= 0 ? oj(tokens[static_cast<size_t>(unk)]) : oj(nullptr)},
                  {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", true},
                  {"byte_fallback", true}, {"ignore_merges", false}, {"vocab", vocab}, {"merges", merge_list}};
    return j;
}

}  // namespace

std::vector<MlxTensorReport> convert_gguf_to_mlx(const std::string& gguf_path, const std::string& out_dir, const MlxConvertOptions& opt) {
    const auto excludes = compile_excludes(opt);
    if (fp4_mode(opt)) throw_usage("--mode " + opt.mode + ": from a GGUF only affine (the formats' own codes) is written");
    const auto f = GgufFile::open(gguf_path);
    const std::string arch = f->get_string("general.architecture").value_or("");
    if (arch != "llama" && arch != "qwen2") throw_bad_input(gguf_path, "architecture '" + arch + "' cannot be written as MLX (llama, qwen2)");
    const std::string a = arch + ".";
    auto need = [&](const std::string& k) {
        const auto v = f->get_int(k);
        if (!v) throw_bad_input(gguf_path, "missing metadata key " + k);
        return *v;
    };
    const int64_t n_embd = need(a + "embedding_length"), n_head = need(a + "attention.head_count");
    const int64_t n_head_kv = f->get_int(a + "attention.head_count_kv").value_or(n_head);
    const GgufTensorInfo* embd = f->find_tensor("token_embd.weight");
    if (!embd || embd->ne.size() != 2) throw_bad_input(gguf_path, "no token_embd.weight");
    const MlxDtype dtype = opt.dtype.value_or(MlxDtype::F16);

    // config.json as transformers writes it for the architecture.
    nlohmann::ordered_json cfg = nlohmann::ordered_json::object();
    cfg["architectures"] = nlohmann::ordered_json::array({arch == "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM"});
    cfg["model_type"] = arch;
    cfg["hidden_size"] = n_embd;
    cfg["intermediate_size"] = need(a + "feed_forward_length");
    cfg["num_attention_heads"] = n_head;
    cfg["num_hidden_layers"] = need(a + "block_count");
    cfg["num_key_value_heads"] = n_head_kv;
    cfg["rms_norm_eps"] = f->get_double(a + "attention.layer_norm_rms_epsilon").value_or(1e-5);
    cfg["rope_theta"] = f->get_double(a + "rope.freq_base").value_or(10000.0);
    cfg["max_position_embeddings"] = f->get_int(a + "context_length").value_or(2048);
    cfg["vocab_size"] = embd->ne[1];
    cfg["tie_word_embeddings"] = f->find_tensor("output.weight") == nullptr;
    if (const auto kl = f->get_int(a + "attention.key_length"); kl && *kl != n_embd / n_head) cfg["head_dim"] = *kl;
    if (f->get_string(a + "rope.scaling.type").value_or("") == "linear")
        cfg["rope_scaling"] = {{"type", "linear"}, {"factor", f->get_double(a + "rope.scaling.factor").value_or(1.0)}};
    cfg["torch_dtype"] = mlx_dtype_name(dtype);
    cfg["bos_token_id"] = f->get_int("tokenizer.ggml.bos_token_id").value_or(1);
    cfg["eos_token_id"] = f->get_int("tokenizer.ggml.eos_token_id").value_or(2);

    ThreadPool pool(threads_or_all(opt.threads));
    std::vector<MlxItem> items;
    std::map<std::pair<int, int>, int> widths;  // (bits, group) of the modules, for the global entry
    std::map<std::string, std::pair<int, int>> per_module;
    for (const auto& t : f->tensors()) {
        const std::string name = hf_name(t.name);
        if (name.empty()) continue;
        const int heads = arch == "llama" ? (t.name.find("attn_q.") != std::string::npos ? static_cast<int>(n_head)
                                              : t.name.find("attn_k.") != std::string::npos ? static_cast<int>(n_head_kv) : 0)
                                          : 0;
        const bool two_d = t.ne.size() == 2 && t.ne[1] > 1;
        const int64_t rows = two_d ? t.ne[1] : 1, cols = t.ne[0];
        const GgufTensorInfo* tp = &t;
        const std::string module = name.ends_with(".weight") ? name.substr(0, name.size() - 7) : "";
        // One row per element for 1-D tensors (biases of permuted weights get the same order).
        auto rows_hf = [tp, heads, two_d, rows, cols]() {
            const size_t rb = two_d ? tp->n_bytes / static_cast<uint64_t>(rows) : type_traits(tp->type).type_size;
            return two_d ? unpermute_rows(tp->data, rows, rb, heads)
                         : (heads ? unpermute_rows(tp->data, cols, rb, heads) : std::vector<uint8_t>(tp->data, tp->data + tp->n_bytes));
        };
        MlxItem it;
        if (two_d && !module.empty() && quantizable_module(module) && opt.quantize && !matches_any(excludes, module)) {
            it.name = module;
            it.quantized = true;
            it.shape = {rows, cols};
            const GgmlType ty = t.type;
            if (const int bits = bits_of(ty)) {  // the same codes, groups of 32
                it.p = {bits, 32, dtype};
                it.quantize = [ty, rows, cols, dtype, rows_hf](MlxTensorReport& r) {
                    const auto data = rows_hf();
                    auto m = *gguf_to_mlx(ty, data.data(), rows, cols, dtype);
                    r.how = std::string("same codes as ") + type_traits(ty).name + ", " + std::to_string(m.t.p.bits) + "-bit g32 " + mlx_dtype_name(dtype);
                    r.exact = m.exact;
                    r.max_abs_err = m.max_abs_err;
                    return std::move(m.t);
                };
            } else if (cols % opt.group_size == 0) {  // requantized from the dequantized weights
                it.p = {opt.bits, opt.group_size, dtype};
                it.quantize = [ty, rows, cols, p = it.p, rows_hf, &pool](MlxTensorReport& r) {
                    std::vector<float> v = dequantize(ty, rows_hf(), rows * cols);
                    std::vector<float> in = v;
                    for (auto& x : in) x = mlx_round(p.dtype, x);
                    MlxAffineTensor q = quantize_rows_mlx(in, rows, cols, p, pool);
                    r.how = std::string("requantized from ") + type_traits(ty).name + ", " + std::to_string(p.bits) + "-bit g" +
                            std::to_string(p.group_size) + " " + mlx_dtype_name(p.dtype);
                    r.max_abs_err = max_abs_diff(mlx_dequantize_f32(q), v);
                    return q;
                };
            } else {
                it.quantized = false;
            }
            if (it.quantized) {
                ++widths[{it.p.bits, it.p.group_size}];
                per_module[module] = {it.p.bits, it.p.group_size};
            }
        }
        if (!it.quantized) {
            it.name = name;
            it.shape = two_d ? std::vector<int64_t>{rows, cols} : std::vector<int64_t>{cols};
            const GgmlType ty = t.type;
            const int64_t n = rows * cols;
            it.floats = [ty, n, rows_hf] { return dequantize(ty, rows_hf(), n); };
        }
        items.push_back(std::move(it));
    }
    // The most common width is the global entry; modules that differ get their own, as mlx-lm's
    // mixed recipes record them.
    MlxConvertOptions q = opt;
    if (!widths.empty()) {
        const auto best = std::max_element(widths.begin(), widths.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
        q.bits = best->first.first;
        q.group_size = best->first.second;
    }
    add_quantization(cfg, q);
    for (const auto& [module, w] : per_module)
        if (w.first != q.bits || w.second != q.group_size) {
            const nlohmann::ordered_json m = {{"group_size", w.second}, {"bits", w.first}};
            cfg["quantization"][module] = m;
            cfg["quantization_config"][module] = m;
        }

    return write_mlx_dir(fs::path(out_dir), cfg, std::move(items), dtype, {gguf_path}, opt.max_shard_bytes,
                         [&](const fs::path& tmp) { write_hf_tokenizer_files(*f, tmp.string()); });
}

namespace {

// A byte-level BPE ("gpt2") GGUF vocabulary as tokenizer.json: the vocabulary, the merges, the
// pre-tokenizer's split regex and the ByteLevel steps, as transformers writes them.
nlohmann::ordered_json bpe_tokenizer_json(const GgufFile& f, const std::vector<std::string>& tokens, const std::vector<int32_t>& types,
                                          int64_t bos, bool add_bos) {
    using oj = nlohmann::ordered_json;
    const std::string pre = f.get_string("tokenizer.ggml.pre").value_or("gpt-2");
    const char* regex = hf_split_regex(pre);
    if (!regex) throw_usage(f.path() + ": the '" + pre + "' pre-tokenizer cannot be written as tokenizer.json yet (gpt-2, llama-bpe, qwen2)");
    const GgufValue* mv = f.find("tokenizer.ggml.merges");
    if (!mv || !mv->array) throw_bad_input(f.path(), "a BPE vocabulary without tokenizer.ggml.merges");
    oj vocab = oj::object();
    for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
    oj added = oj::array();
    for (size_t i = 0; i < tokens.size(); ++i)
        if (types[i] == 3 || types[i] == 4)
            added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                             {"normalized", types[i] == 4}, {"special", types[i] == 3}});
    const oj byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", *regex == 0}};
    oj j = oj::object();
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    j["added_tokens"] = added;
    j["normalizer"] = nullptr;
    if (*regex)
        j["pre_tokenizer"] = {{"type", "Sequence"},
                              {"pretokenizers", oj::array({{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                                                           byte_level})}};
    else
        j["pre_tokenizer"] = byte_level;
    if (add_bos && bos >= 0) {
        j["post_processor"] = bos_template(tokens[static_cast<size_t>(bos)], bos);
    } else {
        j["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
    }
    j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    j["model"] = {{"type", "BPE"},          {"dropout", nullptr},        {"unk_token", nullptr},  {"continuing_subword_prefix", ""},
                  {"end_of_word_suffix", ""}, {"fuse_unk", false},       {"byte_fallback", false}, {"ignore_merges", pre != "gpt-2" && pre != "qwen2"},
                  {"vocab", vocab},         {"merges", mv->array->strings}};
    return j;
}

}  // namespace

void write_hf_tokenizer_files(const GgufFile& f, const std::string& dir) {
    const std::string vocab_model = f.get_string("tokenizer.ggml.model").value_or("");
    if (vocab_model != "llama" && vocab_model != "gpt2")
        throw_usage(f.path() + ": its '" + vocab_model + "' vocabulary cannot be written as Hugging Face tokenizer files (llama, gpt2)");
    const GgufValue* tv = f.find("tokenizer.ggml.tokens");
    const GgufValue* sv = f.find("tokenizer.ggml.scores");
    const GgufValue* yv = f.find("tokenizer.ggml.token_type");
    if (!tv || !tv->array) throw_bad_input(f.path(), "no tokenizer.ggml.tokens");
    const std::vector<std::string>& tokens = tv->array->strings;
    std::vector<float> scores(tokens.size(), 0.f);
    std::vector<int32_t> types(tokens.size(), 1);
    if (sv && sv->array && sv->array->raw.size() == tokens.size() * 4) std::memcpy(scores.data(), sv->array->raw.data(), sv->array->raw.size());
    if (yv && yv->array && yv->array->raw.size() == tokens.size() * 4) std::memcpy(types.data(), yv->array->raw.data(), yv->array->raw.size());
    const auto id = [&](const char* key, int64_t def) {
        const int64_t v = f.get_int(key).value_or(def);
        if (v < 0 || v >= static_cast<int64_t>(tokens.size())) throw_bad_input(f.path(), std::string(key) + " is out of range");
        return v;
    };
    const bool spm = vocab_model == "llama";
    const int64_t unk = spm ? id("tokenizer.ggml.unknown_token_id", 0) : -1;
    const int64_t bos = f.get_int("tokenizer.ggml.bos_token_id") || spm ? id("tokenizer.ggml.bos_token_id", 1) : -1;
    const int64_t eos = f.get_int("tokenizer.ggml.eos_token_id") || spm ? id("tokenizer.ggml.eos_token_id", 2) : -1;
    const GgufValue* ab = f.find("tokenizer.ggml.add_bos_token");
    const bool add_bos = ab ? ab->bits != 0 : spm;
    const auto tok_json = spm ? spm_tokenizer_json(tokens, scores, types, unk, bos, add_bos) : bpe_tokenizer_json(f, tokens, types, bos, add_bos);
    nlohmann::ordered_json tok_cfg = {{"add_bos_token", add_bos}, {"add_eos_token", false}};
    if (bos >= 0) tok_cfg["bos_token"] = tokens[static_cast<size_t>(bos)];
    if (eos >= 0) tok_cfg["eos_token"] = tokens[static_cast<size_t>(eos)];
    if (unk >= 0) tok_cfg["unk_token"] = tokens[static_cast<size_t>(unk)];
    tok_cfg["clean_up_tokenization_spaces"] = false;
    if (spm) tok_cfg["legacy"] = true;
    tok_cfg["tokenizer_class"] = spm ? "LlamaTokenizer" : "PreTrainedTokenizerFast";
    const std::string arch = f.get_string("general.architecture").value_or("llama");
    if (const auto ctx = f.get_int(arch + ".context_length")) tok_cfg["model_max_length"] = *ctx;
    if (const auto tmpl = f.get_string("tokenizer.chat_template")) tok_cfg["chat_template"] = *tmpl;
    write_json_file(fs::path(dir) / "tokenizer.json", tok_json, 2);
    write_json_file(fs::path(dir) / "tokenizer_config.json", tok_cfg, 2);
}

}  // namespace qforge
