// safetensors: 8-byte little-endian header length, JSON header, raw little-endian tensor data.
#include "qforge/safetensors.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "formats/byte_reader.hpp"
#include "formats/json_file.hpp"
#include "qforge/error.hpp"
#include "qforge/output_file.hpp"

namespace qforge {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {
constexpr uint64_t kMaxHeader = 100ull << 20;  // the format's own limit

struct DtypeInfo {
    StDtype d;
    const char* name;
    size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {StDtype::F64, "F64", 8},  {StDtype::F32, "F32", 4},   {StDtype::F16, "F16", 2},
    {StDtype::BF16, "BF16", 2}, {StDtype::I64, "I64", 8},  {StDtype::I32, "I32", 4},
    {StDtype::I16, "I16", 2},  {StDtype::I8, "I8", 1},     {StDtype::U64, "U64", 8},
    {StDtype::U32, "U32", 4},  {StDtype::U16, "U16", 2},   {StDtype::U8, "U8", 1},
    {StDtype::BOOL, "BOOL", 1}, {StDtype::F8_E4M3, "F8_E4M3", 1}, {StDtype::F8_E5M2, "F8_E5M2", 1},
};
}  // namespace

const char* st_dtype_name(StDtype d) {
    for (const auto& i : kDtypes)
        if (i.d == d) return i.name;
    return "?";
}
size_t st_dtype_size(StDtype d) {
    for (const auto& i : kDtypes)
        if (i.d == d) return i.size;
    return 0;
}
std::optional<StDtype> st_dtype_from_name(const std::string& s) {
    for (const auto& i : kDtypes)
        if (s == i.name) return i.d;
    return std::nullopt;
}

int64_t StTensor::n_elements() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
    auto f = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
    f->file_ = MappedFile(path);
    f->bytes_ = f->file_.bytes();
    f->name_ = path;
    f->parse_all();
    return f;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
    auto f = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
    f->bytes_ = bytes;
    f->name_ = name;
    f->parse_all();
    return f;
}

namespace {

// Parses JSON, rejecting duplicate keys at any depth (nlohmann would keep the last silently).
ojson parse_json_strict(const std::string& text, const ByteReader& r) {
    std::vector<std::set<std::string>> seen;
    std::string dup;
    auto cb = [&](int depth, ojson::parse_event_t ev, ojson& parsed) {
        if (ev == ojson::parse_event_t::object_start) {
            seen.resize(static_cast<size_t>(depth) + 1);
            seen[static_cast<size_t>(depth)].clear();
        } else if (ev == ojson::parse_event_t::key) {
            auto& s = seen[static_cast<size_t>(depth) - 1];
            const std::string k = parsed.get<std::string>();
            if (!s.insert(k).second && dup.empty()) dup = k;
        }
        return true;
    };
    ojson j;
    try {
        j = ojson::parse(text, cb);
    } catch (const nlohmann::json::exception& e) {
        std::string msg = e.what();
        r.fail("invalid JSON header (" + msg.substr(0, 120) + ")");
    }
    if (!dup.empty()) r.fail("duplicate key '" + dup + "' in the JSON header");
    return j;
}

}  // namespace

void SafetensorsFile::parse_all() {
    ByteReader r(bytes_, name_);
    const uint64_t n = r.read<uint64_t>("header length");
    if (n > kMaxHeader) r.fail("header length " + std::to_string(n) + " exceeds the 100 MB limit");
    if (n > r.remaining()) r.fail("truncated file: header of " + std::to_string(n) + " bytes runs past the end");
    const uint8_t* hp = r.take(n, "header");
    std::string text(reinterpret_cast<const char*>(hp), n);
    if (text.empty() || text[0] != '{') r.fail("header does not start with '{'");
    if (!is_valid_utf8(text)) r.fail("header is not valid UTF-8");
    const ojson j = parse_json_strict(text, r);
    if (!j.is_object()) r.fail("header is not a JSON object");

    const uint64_t data_start = 8 + n;
    const uint64_t data_size = bytes_.size() - data_start;
    std::vector<std::string> key_order;
    bool first_tensor = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
        key_order.push_back(it.key());
        if (it.key() == "__metadata__") {
            if (!it.value().is_object()) r.fail("__metadata__ is not an object");
            has_metadata_ = true;
            for (auto m = it.value().begin(); m != it.value().end(); ++m) {
                if (!m.value().is_string()) r.fail("__metadata__ value of '" + m.key() + "' is not a string");
                metadata_.emplace_back(m.key(), m.value().get<std::string>());
            }
            continue;
        }
        const auto& v = it.value();
        const std::string& name = it.key();
        if (!v.is_object()) r.fail("entry '" + name + "' is not an object");
        if (!v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") || v.size() != 3)
            r.fail("tensor '" + name + "' needs exactly dtype, shape and data_offsets");
        if (first_tensor) {
            layout_.sorted_fields = v.begin().key() == "data_offsets";
            first_tensor = false;
        }
        StTensor t;
        t.name = name;
        if (!v["dtype"].is_string()) r.fail("tensor '" + name + "': dtype is not a string");
        const auto dt = st_dtype_from_name(v["dtype"].get<std::string>());
        if (!dt) r.fail("tensor '" + name + "': unknown dtype '" + v["dtype"].get<std::string>() + "'");
        t.dtype = *dt;
        if (!v["shape"].is_array()) r.fail("tensor '" + name + "': shape is not an array");
        if (v["shape"].size() > 8) r.fail("tensor '" + name + "': more than 8 dimensions");
        uint64_t n_el = 1;
        for (const auto& d : v["shape"]) {
            if (!d.is_number_unsigned()) r.fail("tensor '" + name + "': shape has a non-integer or negative entry");
            const uint64_t dim = d.get<uint64_t>();
            if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
                (dim != 0 && n_el > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim)))
                r.fail("tensor '" + name + "': element count overflows");
            n_el *= dim;
            t.shape.push_back(static_cast<int64_t>(dim));
        }
        const auto& off = v["data_offsets"];
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            r.fail("tensor '" + name + "': data_offsets must be two non-negative integers");
        t.begin = off[0].get<uint64_t>();
        t.end = off[1].get<uint64_t>();
        if (t.begin > t.end) r.fail("tensor '" + name + "': data_offsets end before they begin");
        if (t.end > data_size) r.fail("tensor '" + name + "': data runs past the end of the file");
        const size_t es = st_dtype_size(t.dtype);
        if (n_el > std::numeric_limits<uint64_t>::max() / es || n_el * es != t.end - t.begin)
            r.fail("tensor '" + name + "': " + std::to_string(t.end - t.begin) + " data bytes do not match shape and dtype");
        t.data = bytes_.data() + data_start + t.begin;
        tensors_.push_back(std::move(t));
    }
    std::stable_sort(tensors_.begin(), tensors_.end(), [](const StTensor& a, const StTensor& b) {
        return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
    });
    for (size_t i = 1; i < tensors_.size(); ++i) {
        if (tensors_[i].begin < tensors_[i - 1].end)
            r.fail("tensors '" + tensors_[i - 1].name + "' and '" + tensors_[i].name + "' overlap");
    }
    // Layout, for byte-identical rewriting.
    layout_.sorted_keys = std::is_sorted(key_order.begin(), key_order.end());
    if (layout_.sorted_keys && !key_order.empty()) {
        // Ambiguous when data order is also sorted with metadata first; data order wins then.
        std::vector<std::string> data_order;
        if (has_metadata_) data_order.push_back("__metadata__");
        for (const auto& t : tensors_) data_order.push_back(t.name);
        if (data_order == key_order) layout_.sorted_keys = false;
    }
    layout_.pad_to_8 = (n % 8 == 0);
}

const StTensor* SafetensorsFile::find(const std::string& name) const {
    for (const auto& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

// ---------------------------------------------------------------------------------------------

SafetensorsModel SafetensorsModel::open(const std::string& path) {
    SafetensorsModel m;
    fs::path p(path);
    fs::path index;
    std::vector<fs::path> shard_paths;
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
        if (fs::exists(p / "model.safetensors.index.json")) {
            index = p / "model.safetensors.index.json";
        } else if (fs::exists(p / "model.safetensors")) {
            shard_paths.push_back(p / "model.safetensors");
        } else {
            for (const auto& e : fs::directory_iterator(p))
                if (e.path().extension() == ".safetensors") shard_paths.push_back(e.path());
            if (shard_paths.empty()) throw_bad_input(path, "no .safetensors files in this directory");
        }
    } else if (p.extension() == ".json") {
        index = p;
    } else {
        shard_paths.push_back(p);
    }
    std::map<std::string, std::string> weight_map;
    if (!index.empty()) {
        const nlohmann::json j = read_json_file(index);
        if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
            throw_bad_input(index.string(), "no weight_map object");
        std::set<std::string> shards;
        for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
            if (!it.value().is_string()) throw_bad_input(index.string(), "weight_map value of '" + it.key() + "' is not a string");
            const std::string f = it.value().get<std::string>();
            if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
                throw_bad_input(index.string(), "shard name '" + f + "' is not a plain file name");
            weight_map[it.key()] = f;
            shards.insert(f);
        }
        for (const auto& s : shards) shard_paths.push_back(index.parent_path() / s);
    }
    std::sort(shard_paths.begin(), shard_paths.end());
    for (const auto& sp : shard_paths) {
        auto f = SafetensorsFile::open(sp.string());
        // Converter order: the header's key order (sorted for files written by the safetensors library).
        std::vector<const StTensor*> in_file;
        for (const auto& t : f->tensors()) in_file.push_back(&t);
        std::sort(in_file.begin(), in_file.end(), [](const StTensor* a, const StTensor* b) { return a->name < b->name; });
        for (const StTensor* t : in_file) {
            if (m.by_name_.count(t->name)) throw_bad_input(sp.string(), "tensor '" + t->name + "' appears in two shards");
            if (!weight_map.empty()) {
                auto it = weight_map.find(t->name);
                if (it == weight_map.end() || it->second != sp.filename().string())
                    throw_bad_input(sp.string(), "tensor '" + t->name + "' is not listed for this shard in the index");
            }
            m.by_name_[t->name] = t;
            m.order_.push_back(t);
        }
        m.files_.push_back(std::move(f));
    }
    for (const auto& [name, file] : weight_map) {
        if (!m.by_name_.count(name)) throw_bad_input(index.string(), "tensor '" + name + "' is missing from shard " + file);
    }
    return m;
}

const StTensor* SafetensorsModel::find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
}

uint64_t SafetensorsModel::total_bytes() const {
    uint64_t n = 0;
    for (const auto& f : files_) n += f->file_size();
    return n;
}

// ---------------------------------------------------------------------------------------------

struct SafetensorsWriter::Impl {
    std::string path;
    std::vector<std::string> inputs;
    StLayout layout;
    std::vector<std::pair<std::string, std::string>> metadata;
    bool has_metadata = false;
    struct Tensor {
        std::string name;
        StDtype dtype;
        std::vector<int64_t> shape;
        uint64_t begin, end;
    };
    std::vector<Tensor> tensors;
    std::unique_ptr<OutputFile> out;
    uint64_t written = 0, total = 0;
};

SafetensorsWriter::SafetensorsWriter(const std::string& path, const std::vector<std::string>& inputs, StLayout layout)
    : impl_(std::make_unique<Impl>()) {
    impl_->path = path;
    impl_->inputs = inputs;
    impl_->layout = layout;
}
SafetensorsWriter::~SafetensorsWriter() = default;

void SafetensorsWriter::set_metadata(std::vector<std::pair<std::string, std::string>> metadata) {
    impl_->metadata = std::move(metadata);
    impl_->has_metadata = true;
}

void SafetensorsWriter::add_tensor(const std::string& name, StDtype dtype, const std::vector<int64_t>& shape) {
    if (name == "__metadata__") throw_usage("tensor name __metadata__ is reserved");
    for (const auto& t : impl_->tensors)
        if (t.name == name) throw_usage("duplicate tensor name '" + name + "'");
    uint64_t n = st_dtype_size(dtype);
    for (auto d : shape) n *= static_cast<uint64_t>(d);
    impl_->tensors.push_back({name, dtype, shape, impl_->total, impl_->total + n});
    impl_->total += n;
}

void SafetensorsWriter::write_header() {
    auto& I = *impl_;
    auto q = [](const std::string& s) { return nlohmann::json(s).dump(); };
    auto tensor_json = [&](const Impl::Tensor& t) {
        std::ostringstream shape;
        shape << "[";
        for (size_t i = 0; i < t.shape.size(); ++i) shape << (i ? "," : "") << t.shape[i];
        shape << "]";
        const std::string dtype = std::string("\"dtype\":\"") + st_dtype_name(t.dtype) + "\"";
        const std::string offs = "\"data_offsets\":[" + std::to_string(t.begin) + "," + std::to_string(t.end) + "]";
        const std::string shp = "\"shape\":" + shape.str();
        return I.layout.sorted_fields ? "{" + offs + "," + dtype + "," + shp + "}" : "{" + dtype + "," + shp + "," + offs + "}";
    };
    std::vector<std::pair<std::string, std::string>> entries;  // key, json value
    if (I.has_metadata) {
        auto md = I.metadata;
        if (I.layout.sorted_keys) std::sort(md.begin(), md.end());
        std::string m = "{";
        for (size_t i = 0; i < md.size(); ++i) m += (i ? "," : "") + q(md[i].first) + ":" + q(md[i].second);
        entries.emplace_back("__metadata__", m + "}");
    }
    for (const auto& t : I.tensors) entries.emplace_back(t.name, tensor_json(t));
    if (I.layout.sorted_keys)
        std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string header = "{";
    for (size_t i = 0; i < entries.size(); ++i) header += (i ? "," : "") + q(entries[i].first) + ":" + entries[i].second;
    header += "}";
    if (I.layout.pad_to_8) header.append((8 - header.size() % 8) % 8, ' ');
    I.out = std::make_unique<OutputFile>(I.path, I.inputs);
    const uint64_t len = header.size();
    I.out->write(&len, 8);
    I.out->write(header.data(), header.size());
}

void SafetensorsWriter::write_tensor_data(const void* data, size_t n) {
    if (!impl_->out) throw std::logic_error("SafetensorsWriter: data before header");
    if (impl_->written + n > impl_->total) throw std::logic_error("SafetensorsWriter: more data than declared");
    impl_->out->write(data, n);
    impl_->written += n;
}

void SafetensorsWriter::finish() {
    if (!impl_->out) write_header();
    if (impl_->written != impl_->total) throw std::logic_error("SafetensorsWriter::finish: missing tensor data");
    impl_->out->commit();
}

}  // namespace qforge
