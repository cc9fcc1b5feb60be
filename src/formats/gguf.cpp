// GGUF reader (v2, v3) and streaming writer.
#include <cstring>
#include <limits>
#include <unordered_set>

#include "formats/byte_reader.hpp"
#include "qforge/error.hpp"
#include "qforge/gguf.hpp"
#include "qforge/output_file.hpp"

namespace qforge {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kMaxDims = 4;
constexpr size_t kMaxTensorName = 63;  // ggml's GGML_MAX_NAME is 64 including the terminator
constexpr int kMaxArrayDepth = 8;
constexpr uint64_t kDefaultAlignment = 32;

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::FLOAT64); }

std::string read_string(ByteReader& r, const char* what) {
    const uint64_t len = r.read<uint64_t>(what);
    if (len > r.remaining())
        r.fail(std::string(what) + " length " + std::to_string(len) + " runs past the end of the file");
    const uint8_t* p = r.take(len, what);
    return std::string(reinterpret_cast<const char*>(p), len);
}

GgufValue read_value(ByteReader& r, GgufValueType type, int depth);

void read_array(ByteReader& r, GgufValue& v, int depth) {
    if (depth >= kMaxArrayDepth) r.fail("metadata arrays nested too deeply");
    const uint32_t et = r.read<uint32_t>("array element type");
    if (!valid_value_type(et)) r.fail("unknown metadata array element type " + std::to_string(et));
    const uint64_t count = r.read<uint64_t>("array length");
    auto a = std::make_shared<GgufArray>();
    a->elem_type = static_cast<GgufValueType>(et);
    a->count = count;
    const auto elem = a->elem_type;
    if (elem == GgufValueType::STRING) {
        if (count > r.remaining() / 8) r.fail("array of " + std::to_string(count) + " strings runs past the end of the file");
        a->strings.reserve(count);
        for (uint64_t i = 0; i < count; ++i) a->strings.push_back(read_string(r, "array string"));
    } else if (elem == GgufValueType::ARRAY) {
        if (count > r.remaining() / 12) r.fail("array of " + std::to_string(count) + " arrays runs past the end of the file");
        a->arrays.reserve(count);
        for (uint64_t i = 0; i < count; ++i) a->arrays.push_back(read_value(r, elem, depth + 1));
    } else {
        const size_t es = gguf_scalar_size(elem);
        if (count > r.remaining() / es) r.fail("array of " + std::to_string(count) + " elements runs past the end of the file");
        const uint8_t* p = r.take(count * es, "array data");
        a->raw.assign(p, p + count * es);
        if (elem == GgufValueType::BOOL) {
            for (uint8_t b : a->raw)
                if (b > 1) r.fail("invalid bool value " + std::to_string(b) + " in a metadata array");
        }
    }
    v.array = std::move(a);
}

GgufValue read_value(ByteReader& r, GgufValueType type, int depth) {
    GgufValue v;
    v.type = type;
    switch (type) {
        case GgufValueType::STRING: v.str = read_string(r, "metadata string"); break;
        case GgufValueType::ARRAY: read_array(r, v, depth); break;
        default: {
            const size_t n = gguf_scalar_size(type);
            const uint8_t* p = r.take(n, "metadata value");
            std::memcpy(&v.bits, p, n);
            if (type == GgufValueType::BOOL && v.bits > 1) r.fail("invalid bool value " + std::to_string(v.bits));
        }
    }
    return v;
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

int64_t GgufTensorInfo::n_elements() const {
    int64_t n = 1;
    for (auto d : ne) n *= d;
    return n;
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
    auto f = std::unique_ptr<GgufFile>(new GgufFile());
    f->file_ = MappedFile(path);
    f->bytes_ = f->file_.bytes();
    f->name_ = path;
    f->parse_all();
    return f;
}

std::unique_ptr<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
    auto f = std::unique_ptr<GgufFile>(new GgufFile());
    f->bytes_ = bytes;
    f->name_ = name;
    f->parse_all();
    return f;
}

void GgufFile::parse_all() {
    ByteReader r(bytes_, name_);
    if (bytes_.size() < 4) r.fail("not a GGUF file (too short for the magic)");
    const uint32_t magic = r.read<uint32_t>("magic");
    if (magic != kGgufMagic) r.fail("not a GGUF file (bad magic)");
    version_ = r.read<uint32_t>("version");
    if (version_ == 1) r.fail("GGUF version 1 is not supported (only v2 and v3)");
    if (version_ != 2 && version_ != 3) {
        if ((version_ & 0xffff) == 0 && (version_ >> 24) >= 2 && (version_ >> 24) <= 3)
            r.fail("big-endian GGUF files are not supported");
        r.fail("unknown GGUF version " + std::to_string(version_));
    }
    const uint64_t n_tensors = r.read<uint64_t>("tensor count");
    const uint64_t n_kv = r.read<uint64_t>("metadata count");
    // Each kv needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least 24.
    if (n_kv > r.remaining() / 13) r.fail("metadata count " + std::to_string(n_kv) + " is larger than the file can hold");
    if (n_tensors > r.remaining() / 24) r.fail("tensor count " + std::to_string(n_tensors) + " is larger than the file can hold");

    std::unordered_set<std::string> keys;
    kv_.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
        GgufKV kv;
        kv.key = read_string(r, "metadata key");
        if (kv.key.empty()) r.fail("empty metadata key");
        if (!is_valid_utf8(kv.key)) r.fail("metadata key #" + std::to_string(i) + " is not valid UTF-8");
        if (!keys.insert(kv.key).second) r.fail("duplicate metadata key '" + kv.key + "'");
        const uint32_t t = r.read<uint32_t>("metadata value type");
        if (!valid_value_type(t)) r.fail("metadata key '" + kv.key + "' has unknown value type " + std::to_string(t));
        kv.value = read_value(r, static_cast<GgufValueType>(t), 0);
        kv_.push_back(std::move(kv));
    }

    alignment_ = kDefaultAlignment;
    if (const GgufValue* a = find("general.alignment")) {
        if (a->type != GgufValueType::UINT32) r.fail("general.alignment must be a UINT32");
        const uint64_t al = a->bits;
        if (al == 0 || (al & (al - 1)) != 0) r.fail("general.alignment " + std::to_string(al) + " is not a power of two");
        alignment_ = al;
    }

    std::unordered_set<std::string> names;
    tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        GgufTensorInfo t;
        t.name = read_string(r, "tensor name");
        if (t.name.size() > kMaxTensorName) r.fail("tensor name '" + t.name.substr(0, 40) + "...' is longer than 63 bytes");
        if (!is_valid_utf8(t.name)) r.fail("tensor name #" + std::to_string(i) + " is not valid UTF-8");
        if (!names.insert(t.name).second) r.fail("duplicate tensor name '" + t.name + "'");
        const uint32_t n_dims = r.read<uint32_t>("tensor dimension count");
        if (n_dims > kMaxDims) r.fail("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (at most 4)");
        int64_t n_el = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t v = r.read<uint64_t>("tensor dimension");
            if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                r.fail("tensor '" + t.name + "' has a negative dimension");
            const auto dim = static_cast<int64_t>(v);
            if (dim != 0 && n_el > std::numeric_limits<int64_t>::max() / dim)
                r.fail("tensor '" + t.name + "': element count overflows");
            n_el *= dim;
            t.ne.push_back(dim);
        }
        const uint32_t type_id = r.read<uint32_t>("tensor type");
        const TypeTraits* tt = find_type(type_id);
        if (!tt || tt->internal) r.fail("tensor '" + t.name + "' has unknown ggml type id " + std::to_string(type_id));
        t.type = tt->type;
        const int64_t ne0 = t.ne.empty() ? 1 : t.ne[0];
        if (ne0 % tt->block_size != 0)
            r.fail("tensor '" + t.name + "': row length " + std::to_string(ne0) + " is not a multiple of the " +
                   tt->name + " block size " + std::to_string(tt->block_size));
        const uint64_t blocks = static_cast<uint64_t>(n_el / tt->block_size);
        if (blocks > std::numeric_limits<uint64_t>::max() / tt->type_size)
            r.fail("tensor '" + t.name + "': byte size overflows");
        t.n_bytes = blocks * tt->type_size;
        t.offset = r.read<uint64_t>("tensor offset");
        if (t.offset % alignment_ != 0)
            r.fail("tensor '" + t.name + "': offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                   std::to_string(alignment_));
        tensors_.push_back(std::move(t));
    }

    data_offset_ = align_up(r.pos(), alignment_);
    if (data_offset_ > bytes_.size()) {
        if (!tensors_.empty()) r.fail("truncated file: the tensor data section is missing");
        data_offset_ = bytes_.size();
    }
    const uint64_t data_size = bytes_.size() - data_offset_;
    for (auto& t : tensors_) {
        if (t.offset > data_size || t.n_bytes > data_size - t.offset)
            r.fail("tensor '" + t.name + "': data (" + std::to_string(t.n_bytes) + " bytes at offset " +
                   std::to_string(t.offset) + ") runs past the end of the file");
        t.data = bytes_.data() + data_offset_ + t.offset;
    }
}

const GgufValue* GgufFile::find(const std::string& key) const {
    for (const auto& kv : kv_)
        if (kv.key == key) return &kv.value;
    return nullptr;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
    for (const auto& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

std::optional<std::string> GgufFile::get_string(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v || v->type != GgufValueType::STRING) return std::nullopt;
    return v->str;
}

std::optional<int64_t> GgufFile::get_int(const std::string& key) const {
    const GgufValue* v = find(key);
    return v ? v->as_int() : std::nullopt;
}

std::optional<double> GgufFile::get_double(const std::string& key) const {
    const GgufValue* v = find(key);
    return v ? v->as_double() : std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Writer

namespace {
void put_u32(std::vector<uint8_t>& out, uint32_t v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + 4);
}
void put_u64(std::vector<uint8_t>& out, uint64_t v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + 8);
}
void put_string(std::vector<uint8_t>& out, const std::string& s) {
    put_u64(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}
}  // namespace

void gguf_serialize_value(const GgufValue& v, std::vector<uint8_t>& out) {
    switch (v.type) {
        case GgufValueType::STRING: put_string(out, v.str); return;
        case GgufValueType::ARRAY: {
            const auto& a = *v.array;
            put_u32(out, static_cast<uint32_t>(a.elem_type));
            put_u64(out, a.count);
            if (a.elem_type == GgufValueType::STRING) {
                for (const auto& s : a.strings) put_string(out, s);
            } else if (a.elem_type == GgufValueType::ARRAY) {
                for (const auto& e : a.arrays) gguf_serialize_value(e, out);
            } else {
                out.insert(out.end(), a.raw.begin(), a.raw.end());
            }
            return;
        }
        default: {
            const auto* p = reinterpret_cast<const uint8_t*>(&v.bits);
            out.insert(out.end(), p, p + gguf_scalar_size(v.type));
        }
    }
}

struct GgufWriter::Impl {
    std::string path;
    std::vector<std::string> inputs;
    uint32_t version;
    struct Tensor {
        std::string name;
        GgmlType type;
        std::vector<int64_t> ne;
        uint64_t n_bytes;
        uint64_t offset;
    };
    std::vector<Tensor> tensors;
    std::unique_ptr<OutputFile> out;
    bool header_written = false;
    size_t current = 0;        // tensor being written
    uint64_t current_done = 0; // bytes of it written
    uint64_t alignment = kDefaultAlignment;

    uint64_t header_size(const std::vector<GgufKV>& kv) const {
        std::vector<uint8_t> buf;
        serialize_header(kv, buf);
        return buf.size();
    }
    void serialize_header(const std::vector<GgufKV>& kv, std::vector<uint8_t>& buf) const {
        put_u32(buf, kGgufMagic);
        put_u32(buf, version);
        put_u64(buf, tensors.size());
        put_u64(buf, kv.size());
        for (const auto& e : kv) {
            put_string(buf, e.key);
            put_u32(buf, static_cast<uint32_t>(e.value.type));
            gguf_serialize_value(e.value, buf);
        }
        for (const auto& t : tensors) {
            put_string(buf, t.name);
            put_u32(buf, static_cast<uint32_t>(t.ne.size()));
            for (auto d : t.ne) put_u64(buf, static_cast<uint64_t>(d));
            put_u32(buf, static_cast<uint32_t>(t.type));
            put_u64(buf, t.offset);
        }
    }
};

GgufWriter::GgufWriter(const std::string& path, const std::vector<std::string>& inputs, uint32_t version)
    : impl_(std::make_unique<Impl>()) {
    if (version != 2 && version != 3) throw_usage("GGUF writer: version must be 2 or 3");
    impl_->path = path;
    impl_->inputs = inputs;
    impl_->version = version;
}

GgufWriter::~GgufWriter() = default;

void GgufWriter::add_kv(const std::string& key, GgufValue value) {
    if (impl_->header_written) throw std::logic_error("GgufWriter::add_kv after write_header");
    if (key == "general.alignment") {
        if (value.type != GgufValueType::UINT32 || value.bits == 0 || (value.bits & (value.bits - 1)))
            throw_usage("general.alignment must be a power of two UINT32");
        impl_->alignment = value.bits;
    }
    for (auto& kv : kv_) {
        if (kv.key == key) {
            kv.value = std::move(value);
            return;
        }
    }
    kv_.push_back({key, std::move(value)});
}

void GgufWriter::remove_kv(const std::string& key) {
    if (key == "general.alignment") impl_->alignment = kDefaultAlignment;
    std::erase_if(kv_, [&](const GgufKV& kv) { return kv.key == key; });
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne) {
    if (impl_->header_written) throw std::logic_error("GgufWriter::add_tensor after write_header");
    for (const auto& t : impl_->tensors)
        if (t.name == name) throw_usage("duplicate tensor name '" + name + "'");
    if (name.size() > kMaxTensorName) throw_usage("tensor name '" + name + "' is longer than 63 bytes");
    if (ne.size() > kMaxDims) throw_usage("tensor '" + name + "' has more than 4 dimensions");
    const TypeTraits& tt = type_traits(type);
    if (tt.internal) throw_usage("tensor '" + name + "': " + tt.name + " is qforge's in-memory layout and has no GGUF type");
    int64_t n = 1;
    for (auto d : ne) n *= d;
    if ((ne.empty() ? 1 : ne[0]) % tt.block_size != 0)
        throw_usage("tensor '" + name + "': row length is not a multiple of the " + tt.name + " block size");
    Impl::Tensor t{name, type, ne, static_cast<uint64_t>(n / tt.block_size) * tt.type_size, 0};
    impl_->tensors.push_back(std::move(t));
}


uint64_t GgufWriter::predicted_size() const {
    uint64_t off = 0;
    for (const auto& t : impl_->tensors) off = align_up(off + t.n_bytes, impl_->alignment);
    if (impl_->tensors.empty()) return impl_->header_size(kv_);
    return align_up(impl_->header_size(kv_), impl_->alignment) + off;
}

void GgufWriter::write_header() {
    if (impl_->header_written) throw std::logic_error("GgufWriter::write_header twice");
    uint64_t off = 0;
    for (auto& t : impl_->tensors) {
        t.offset = off;
        off = align_up(off + t.n_bytes, impl_->alignment);
    }
    std::vector<uint8_t> buf;
    impl_->serialize_header(kv_, buf);
    impl_->out = std::make_unique<OutputFile>(impl_->path, impl_->inputs);
    impl_->out->write(buf.data(), buf.size());
    // Like gguf-py, a file without tensors (a vocabulary-only GGUF) ends right after its header.
    if (!impl_->tensors.empty()) impl_->out->write_zeros(align_up(buf.size(), impl_->alignment) - buf.size());
    impl_->header_written = true;
}

void GgufWriter::write_tensor_data(const void* data, size_t n) {
    if (!impl_->header_written) throw std::logic_error("GgufWriter: tensor data before header");
    auto& I = *impl_;
    const auto* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
        if (I.current >= I.tensors.size()) throw std::logic_error("GgufWriter: more tensor data than tensors");
        const auto& t = I.tensors[I.current];
        const uint64_t k = std::min<uint64_t>(n, t.n_bytes - I.current_done);
        I.out->write(p, k);
        p += k;
        n -= k;
        I.current_done += k;
        if (I.current_done == t.n_bytes) {
            I.out->write_zeros(align_up(t.n_bytes, I.alignment) - t.n_bytes);
            ++I.current;
            I.current_done = 0;
        }
    }
    // Zero-byte tensors are complete as soon as they are reached.
    while (I.current < I.tensors.size() && I.tensors[I.current].n_bytes == 0 && I.current_done == 0) ++I.current;
}

void GgufWriter::finish() {
    if (!impl_->header_written) write_header();
    auto& I = *impl_;
    while (I.current < I.tensors.size() && I.tensors[I.current].n_bytes == 0) ++I.current;
    if (I.current != I.tensors.size())
        throw std::logic_error("GgufWriter::finish: tensor '" + I.tensors[I.current].name + "' has no data");
    I.out->commit();
}

}  // namespace qforge
