#include "qforge/quantize_model.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "core/strings.hpp"
#include "qforge/error.hpp"
#include "qforge/progress.hpp"
#include "qforge/quantize.hpp"
#include "quant/mixes.hpp"

namespace qforge {

namespace {

using T = GgmlType;

const std::vector<Ftype> kFtypes = {
    {"F32", 0, T::F32, "32-bit float (no quantization)"},
    {"F16", 1, T::F16, "16-bit float"},
    {"BF16", 32, T::BF16, "bfloat16"},
    {"Q8_0", 7, T::Q8_0, "8.50 bpw"},
    {"Q6_K", 18, T::Q6_K, "6.56 bpw"},
    {"Q5_K_M", 17, T::Q5_K, "Q5_K with Q6_K for half of attn_v and ffn_down"},
    {"Q5_K_S", 16, T::Q5_K, "5.5 bpw"},
    {"Q5_1", 9, T::Q5_1, "6.0 bpw"},
    {"Q5_0", 8, T::Q5_0, "5.5 bpw"},
    {"Q4_K_M", 15, T::Q4_K, "Q4_K with Q6_K for half of attn_v and ffn_down"},
    {"Q4_K_S", 14, T::Q4_K, "4.5 bpw"},
    {"Q4_1", 3, T::Q4_1, "5.0 bpw"},
    {"Q4_0", 2, T::Q4_0, "4.5 bpw"},
    {"Q3_K_L", 13, T::Q3_K, "Q3_K with Q5_K for attn_v, attn_output and ffn_down"},
    {"Q3_K_M", 12, T::Q3_K, "Q3_K with Q4_K/Q5_K for attn_v, attn_output and ffn_down"},
    {"Q3_K_S", 11, T::Q3_K, "3.44 bpw"},
    {"Q2_K", 10, T::Q2_K, "Q2_K with Q3_K for attn_v, attn_output and ffn_down"},
    {"Q2_K_S", 21, T::Q2_K, "Q2_K everywhere (needs an imatrix to be usable)"},
    {"IQ4_NL", 25, T::IQ4_NL, "4.5 bpw non-linear"},
    {"IQ4_XS", 30, T::IQ4_XS, "4.25 bpw non-linear"},
};

int layer_of(const std::string& name) {
    int layer = -1;
    std::sscanf(name.c_str(), "blk.%d.", &layer);
    return layer;
}

}  // namespace

const std::vector<Ftype>& all_ftypes() { return kFtypes; }

const Ftype* find_ftype(std::string_view name) {
    if (iequals(name, "Q3_K")) name = "Q3_K_M";
    else if (iequals(name, "Q4_K")) name = "Q4_K_M";
    else if (iequals(name, "Q5_K")) name = "Q5_K_M";
    for (const auto& f : kFtypes)
        if (iequals(f.name, name)) return &f;
    return nullptr;
}

const Ftype* find_ftype_by_id(uint32_t id) {
    for (const auto& f : kFtypes)
        if (f.id == id) return &f;
    return nullptr;
}

Imatrix load_imatrix(const std::string& path) {
    MappedFile f(path);
    const uint8_t* p = f.data();
    const uint64_t size = f.size();
    uint64_t pos = 0;
    auto read_i32 = [&](const char* what) {
        if (size - pos < 4) throw_bad_input(path, std::string("truncated importance matrix (") + what + ")");
        int32_t v;
        std::memcpy(&v, p + pos, 4);
        pos += 4;
        return v;
    };
    Imatrix m;
    const int32_t n_entries = read_i32("entry count");
    if (n_entries < 1) throw_bad_input(path, "importance matrix has no entries");
    if (static_cast<uint64_t>(n_entries) > size / 12) throw_bad_input(path, "importance matrix entry count is larger than the file");
    for (int32_t i = 0; i < n_entries; ++i) {
        const int32_t len = read_i32("name length");
        if (len < 1 || static_cast<uint64_t>(len) > size - pos) throw_bad_input(path, "bad name length in entry " + std::to_string(i + 1));
        std::string name(reinterpret_cast<const char*>(p + pos), static_cast<size_t>(len));
        pos += static_cast<uint64_t>(len);
        const int32_t ncall = read_i32("call count");
        const int32_t nval = read_i32("value count");
        if (nval < 1 || static_cast<uint64_t>(nval) > (size - pos) / 4)
            throw_bad_input(path, "bad value count for '" + name + "'");
        std::vector<float> values(static_cast<size_t>(nval));
        std::memcpy(values.data(), p + pos, static_cast<size_t>(nval) * 4);
        pos += static_cast<uint64_t>(nval) * 4;
        if (ncall > 0)
            for (auto& v : values) v /= static_cast<float>(ncall);
        m.entries[name] = std::move(values);
    }
    if (pos < size) {
        m.chunks = read_i32("chunk count");
        const int32_t dlen = read_i32("dataset name length");
        if (dlen < 0 || static_cast<uint64_t>(dlen) > size - pos) throw_bad_input(path, "bad dataset name length");
        m.dataset.assign(reinterpret_cast<const char*>(p + pos), static_cast<size_t>(dlen));
    }
    return m;
}

uint64_t SourceTensor::n_bytes() const {
    return *row_bytes(type_traits(type), ne.empty() ? 1 : ne[0]) * static_cast<uint64_t>(n_elements() / (ne.empty() ? 1 : ne[0]));
}

int64_t SourceTensor::n_elements() const {
    int64_t n = 1;
    for (auto d : ne) n *= d;
    return n;
}

std::string SourceModel::architecture() const {
    for (const auto& kv : metadata)
        if (kv.key == "general.architecture" && kv.value.type == GgufValueType::STRING) return kv.value.str;
    return "";
}

std::optional<int64_t> SourceModel::get_int(const std::string& key) const {
    for (const auto& kv : metadata)
        if (kv.key == key) return kv.value.as_int();
    return std::nullopt;
}

SourceModel source_from_gguf(const GgufFile& f) {
    SourceModel m;
    m.path = f.path();
    m.inputs = {f.path()};
    m.metadata = f.metadata();
    for (const auto& t : f.tensors()) {
        const uint8_t* data = t.data;
        const uint64_t n = t.n_bytes;
        m.tensors.push_back({t.name, t.ne, t.type, [data, n](uint8_t* dst) { std::memcpy(dst, data, n); }, std::nullopt});
    }
    return m;
}

void write_tensors(GgufWriter& w, const std::vector<const SourceTensor*>& order, const std::vector<QuantizedTensorInfo>& infos,
                   const std::vector<const std::vector<float>*>& imatrix, int threads, const char* label, const std::string& source,
                   const QuantizeAdjust& adjust) {
    uint64_t total = 0;
    for (const auto& i : infos) total += i.bytes_in;
    Progress progress(label, total);
    std::vector<uint8_t> raw, q;
    std::vector<float> f32;
    for (size_t i = 0; i < order.size(); ++i) {
        const SourceTensor& t = *order[i];
        const auto& info = infos[i];
        raw.resize(t.n_bytes());
        t.read(raw.data());
        if (info.to == t.type) {
            w.write_tensor_data(raw.data(), raw.size());
        } else {
            const int64_t n = t.n_elements();
            f32.resize(static_cast<size_t>(n));
            dequantize(t.type, raw.data(), f32.data(), n);
            for (int64_t k = 0; k < n; ++k) {
                if (!std::isfinite(f32[static_cast<size_t>(k)]))
                    throw_bad_input(source, "tensor '" + t.name + "' contains NaN or Inf values");
            }
            q.resize(info.bytes_out);
            const int64_t ncols = t.ne[0];
            const float* im = i < imatrix.size() && imatrix[i] ? imatrix[i]->data() : nullptr;
            if (!adjust || !adjust(t.name, info.to, f32.data(), n / ncols, ncols, q.data()))
                quantize_rows(f32.data(), q.data(), n / ncols, ncols, info.to, im, threads);
            w.write_tensor_data(q.data(), q.size());
        }
        progress.add(info.bytes_in);
    }
    progress.finish();
}

QuantizeReport quantize_model(const SourceModel& src, const std::string& out_path, const QuantizeOptions& opt) {
    const auto start = std::chrono::steady_clock::now();
    const Ftype* ft = find_ftype(opt.ftype);
    if (!ft) throw_usage("unknown quantization type '" + opt.ftype + "' (see 'qforge quantize --help')");
    int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

    std::vector<const SourceTensor*> order;
    for (const auto& t : src.tensors) order.push_back(&t);
    if (opt.sort_tensors) {
        std::stable_sort(order.begin(), order.end(), [](const SourceTensor* a, const SourceTensor* b) {
            const int la = layer_of(a->name), lb = layer_of(b->name);
            if (la != lb) return la < lb;
            return a->name < b->name;
        });
    }

    TensorTypeChooser chooser(src, *ft, opt);
    QuantizeReport report;
    std::vector<const std::vector<float>*> imat(order.size(), nullptr);
    for (size_t i = 0; i < order.size(); ++i) {
        const SourceTensor& t = *order[i];
        const GgmlType to = chooser.choose(t);
        if (to != t.type) {
            const TypeTraits& from_tt = type_traits(t.type);
            if (from_tt.is_quantized && !opt.allow_requantize)
                throw_usage(src.path + ": tensor '" + t.name + "' is already " + from_tt.name +
                            "; requantizing is disabled (use --allow-requantize)");
            if (!from_tt.dequantize) throw_usage(std::string("cannot read tensors of type ") + from_tt.name);
            if (!type_traits(to).quantize) throw_usage(std::string("quantizing to ") + type_traits(to).name + " is not supported");
            if (opt.imatrix) {
                auto it = opt.imatrix->entries.find(t.name);
                if (it != opt.imatrix->entries.end()) {
                    if (static_cast<int64_t>(it->second.size()) != t.ne[0])
                        throw_bad_input(opt.imatrix_file, "importance matrix for '" + t.name + "' has " +
                                                              std::to_string(it->second.size()) + " values, the tensor has rows of " +
                                                              std::to_string(t.ne[0]));
                    imat[i] = &it->second;
                }
            }
            if (type_traits(to).needs_imatrix && !imat[i])
                throw_usage(std::string("type ") + type_traits(to).name + " needs an importance matrix (--imatrix) for '" + t.name + "'");
        }
        QuantizedTensorInfo info{t.name, t.ne, t.type, to, t.n_bytes(), 0};
        info.bytes_out = *row_bytes(type_traits(to), t.ne.empty() ? 1 : t.ne[0]) *
                         static_cast<uint64_t>(t.n_elements() / (t.ne.empty() ? 1 : t.ne[0]));
        report.bytes_in += info.bytes_in;
        report.bytes_out += info.bytes_out;
        report.tensors.push_back(std::move(info));
    }

    GgufWriter w(out_path, src.inputs);
    for (const auto& kv : src.metadata) {
        if (kv.key == "general.quantization_version" || kv.key == "general.file_type") continue;
        w.add_kv(kv.key, kv.value);
    }
    w.add_kv("general.quantization_version", GgufValue::u32(2));
    w.add_kv("general.file_type", GgufValue::u32(ft->id));
    if (opt.imatrix && !opt.imatrix->entries.empty()) {
        w.add_kv("quantize.imatrix.file", GgufValue::string(opt.imatrix_file));
        if (!opt.imatrix->dataset.empty()) w.add_kv("quantize.imatrix.dataset", GgufValue::string(opt.imatrix->dataset));
        w.add_kv("quantize.imatrix.entries_count", GgufValue::i32(static_cast<int32_t>(opt.imatrix->entries.size())));
        if (opt.imatrix->chunks > 0) w.add_kv("quantize.imatrix.chunks_count", GgufValue::i32(opt.imatrix->chunks));
    }
    for (const auto& info : report.tensors) w.add_tensor(info.name, info.to, info.ne);
    report.file_size = w.predicted_size();
    if (opt.dry_run) {
        report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return report;
    }

    w.write_header();
    write_tensors(w, order, report.tensors, imat, threads, "quantize", src.path, opt.adjust);
    w.finish();
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace qforge
