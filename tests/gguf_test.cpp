#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "qforge/error.hpp"
#include "qforge/gguf.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using test::read_file;

// Hand-built GGUF bytes, so each malformed-input test can break exactly one field.
struct GgufBytes {
    std::vector<uint8_t> b;
    void u32(uint32_t v) { raw(&v, 4); }
    void u64(uint64_t v) { raw(&v, 8); }
    void raw(const void* p, size_t n) {
        auto* c = static_cast<const uint8_t*>(p);
        b.insert(b.end(), c, c + n);
    }
    void str(const std::string& s) {
        u64(s.size());
        raw(s.data(), s.size());
    }
    void pad(size_t a = 32) { b.resize((b.size() + a - 1) / a * a, 0); }
};

struct Spec {
    uint32_t magic = 0x46554747;
    uint32_t version = 3;
    std::string key1 = "general.architecture";
    std::string key2 = "general.name";
    std::string t1 = "a.weight";
    std::string t2 = "b.weight";
    uint32_t type2 = 0;  // f32
    uint64_t ne0_2 = 8;
    uint64_t offset2 = 32;
    bool truncate_data = false;
};

// Two f32 tensors: a [8] at offset 0 and b [ne0_2] at offset2.
std::vector<uint8_t> build(const Spec& s) {
    GgufBytes g;
    g.u32(s.magic);
    g.u32(s.version);
    g.u64(2);  // tensors
    g.u64(2);  // kv
    g.str(s.key1);
    g.u32(8);
    g.str("llama");
    g.str(s.key2);
    g.u32(8);
    g.str("test");
    g.str(s.t1);
    g.u32(1);
    g.u64(8);
    g.u32(0);
    g.u64(0);
    g.str(s.t2);
    g.u32(1);
    g.u64(s.ne0_2);
    g.u32(s.type2);
    g.u64(s.offset2);
    g.pad();
    std::vector<float> data(16, 1.5f);
    g.raw(data.data(), s.truncate_data ? 40 : 64);
    return g.b;
}

std::string expect_bad(const std::vector<uint8_t>& bytes) {
    try {
        GgufFile::parse(bytes, "bad.gguf");
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::bad_input);
        return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
}

TEST(Gguf, ParsesHandBuiltFile) {
    const auto bytes = build({});
    auto f = GgufFile::parse(bytes, "x.gguf");
    EXPECT_EQ(f->version(), 3u);
    ASSERT_EQ(f->tensors().size(), 2u);
    EXPECT_EQ(f->get_string("general.architecture").value(), "llama");
    EXPECT_EQ(f->tensors()[1].n_bytes, 32u);
    float v;
    std::memcpy(&v, f->tensors()[1].data, 4);
    EXPECT_EQ(v, 1.5f);
}

TEST(Gguf, RejectsBadMagic) {
    Spec s;
    s.magic = 0x12345678;
    EXPECT_NE(expect_bad(build(s)).find("bad.gguf: not a GGUF file"), std::string::npos);
}

TEST(Gguf, RejectsUnknownVersion) {
    Spec s;
    s.version = 7;
    EXPECT_NE(expect_bad(build(s)).find("unknown GGUF version 7"), std::string::npos);
    s.version = 1;
    EXPECT_NE(expect_bad(build(s)).find("version 1 is not supported"), std::string::npos);
}

TEST(Gguf, RejectsTruncatedHeaderAtEveryLength) {
    const auto full = build({});
    // Every prefix that cuts the header (or the data) must fail cleanly.
    for (size_t n = 0; n < full.size(); ++n) {
        std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(n));
        const std::string msg = expect_bad(cut);
        EXPECT_FALSE(msg.empty()) << n;
    }
}

TEST(Gguf, RejectsHugeCounts) {
    auto b = build({});
    std::vector<uint8_t> t = b;
    const uint64_t huge = 1ull << 60;
    std::memcpy(&t[8], &huge, 8);
    EXPECT_NE(expect_bad(t).find("tensor count"), std::string::npos);
    t = b;
    std::memcpy(&t[16], &huge, 8);
    EXPECT_NE(expect_bad(t).find("metadata count"), std::string::npos);
    t = b;
    std::memcpy(&t[24], &huge, 8);  // length of the first key
    EXPECT_NE(expect_bad(t).find("runs past the end"), std::string::npos);
    // A huge string array count.
    GgufBytes g;
    g.u32(0x46554747);
    g.u32(3);
    g.u64(0);
    g.u64(1);
    g.str("tokenizer.ggml.tokens");
    g.u32(9);
    g.u32(8);
    g.u64(1ull << 62);
    EXPECT_NE(expect_bad(g.b).find("array of"), std::string::npos);
}

TEST(Gguf, RejectsDataPastEnd) {
    Spec s;
    s.truncate_data = true;
    EXPECT_NE(expect_bad(build(s)).find("runs past the end of the file"), std::string::npos);
    Spec s2;
    s2.offset2 = 1ull << 40;
    EXPECT_NE(expect_bad(build(s2)).find("runs past the end of the file"), std::string::npos);
}

TEST(Gguf, RejectsMisalignedOffset) {
    Spec s;
    s.offset2 = 36;
    EXPECT_NE(expect_bad(build(s)).find("not a multiple of the alignment"), std::string::npos);
}

TEST(Gguf, RejectsBadTypeId) {
    Spec s;
    s.type2 = 4;  // removed Q4_2
    EXPECT_NE(expect_bad(build(s)).find("unknown ggml type id 4"), std::string::npos);
    s.type2 = 1000;
    EXPECT_NE(expect_bad(build(s)).find("unknown ggml type id 1000"), std::string::npos);
}

TEST(Gguf, RejectsDuplicateNames) {
    Spec s;
    s.t2 = s.t1;
    EXPECT_NE(expect_bad(build(s)).find("duplicate tensor name 'a.weight'"), std::string::npos);
    Spec k;
    k.key2 = k.key1;
    EXPECT_NE(expect_bad(build(k)).find("duplicate metadata key"), std::string::npos);
}

TEST(Gguf, RejectsDimensionOverflow) {
    Spec s;
    s.ne0_2 = 1ull << 63;
    EXPECT_FALSE(expect_bad(build(s)).empty());
    // Two dimensions whose product overflows int64.
    GgufBytes g;
    g.u32(0x46554747);
    g.u32(3);
    g.u64(1);
    g.u64(0);
    g.str("t");
    g.u32(2);
    g.u64(1ull << 40);
    g.u64(1ull << 40);
    g.u32(0);
    g.u64(0);
    EXPECT_NE(expect_bad(g.b).find("element count overflows"), std::string::npos);
}

TEST(Gguf, RejectsNonUtf8Key) {
    Spec s;
    s.key2 = std::string("general.\xff\xfe", 10);
    EXPECT_NE(expect_bad(build(s)).find("not valid UTF-8"), std::string::npos);
}

TEST(Gguf, RejectsRowNotMultipleOfBlock) {
    Spec s;
    s.type2 = 2;  // q4_0, block 32
    s.ne0_2 = 8;
    EXPECT_NE(expect_bad(build(s)).find("block size"), std::string::npos);
}

TEST(Gguf, ValueAccessors) {
    EXPECT_EQ(GgufValue::i8(-3).as_int().value(), -3);
    EXPECT_EQ(GgufValue::i32(-70000).as_int().value(), -70000);
    EXPECT_EQ(GgufValue::u64(1ull << 40).as_int().value(), 1ll << 40);
    EXPECT_FLOAT_EQ(static_cast<float>(GgufValue::f32(0.25f).as_double().value()), 0.25f);
    EXPECT_FALSE(GgufValue::string("x").as_int().has_value());
}

TEST(Gguf, WriterRoundTripsEveryValueType) {
    test::TempDir tmp;
    const std::string path = tmp.path("all.gguf");
    {
        GgufWriter w(path);
        w.add_kv("u8", GgufValue::u8(200));
        w.add_kv("i8", GgufValue::i8(-100));
        w.add_kv("u16", GgufValue::u16(60000));
        w.add_kv("i16", GgufValue::i16(-30000));
        w.add_kv("u32", GgufValue::u32(4000000000u));
        w.add_kv("i32", GgufValue::i32(-2000000000));
        w.add_kv("u64", GgufValue::u64(1ull << 63));
        w.add_kv("i64", GgufValue::i64(-(1ll << 62)));
        w.add_kv("f32", GgufValue::f32(3.25f));
        w.add_kv("f64", GgufValue::f64(-1e300));
        w.add_kv("bool", GgufValue::boolean(true));
        w.add_kv("str", GgufValue::string("héllo"));
        w.add_kv("strs", GgufValue::string_array({"a", "", "ccc"}));
        w.add_kv("ints", GgufValue::numeric_array<int32_t>(GgufValueType::INT32, {1, -2, 3}));
        GgufValue nested;
        nested.type = GgufValueType::ARRAY;
        nested.array = std::make_shared<GgufArray>();
        nested.array->elem_type = GgufValueType::ARRAY;
        nested.array->count = 2;
        nested.array->arrays = {GgufValue::string_array({"x"}),
                                GgufValue::numeric_array<float>(GgufValueType::FLOAT32, {1.f, 2.f})};
        w.add_kv("nested", nested);
        w.add_kv("general.alignment", GgufValue::u32(64));
        w.add_tensor("t0", GgmlType::F32, {3});
        w.add_tensor("t1", GgmlType::Q8_0, {64, 2});
        w.write_header();
        std::vector<float> t0 = {1, 2, 3};
        w.write_tensor_data(t0.data(), 12);
        std::vector<uint8_t> q(34 * 4, 7);
        w.write_tensor_data(q.data(), 50);
        w.write_tensor_data(q.data() + 50, q.size() - 50);
        w.finish();
    }
    auto f = GgufFile::open(path);
    EXPECT_EQ(f->alignment(), 64u);
    EXPECT_EQ(f->get_int("u8").value(), 200);
    EXPECT_EQ(f->get_int("i8").value(), -100);
    EXPECT_EQ(f->get_int("i16").value(), -30000);
    EXPECT_EQ(f->get_int("u32").value(), 4000000000ll);
    EXPECT_EQ(f->find("u64")->bits, 1ull << 63);
    EXPECT_EQ(f->get_double("f64").value(), -1e300);
    EXPECT_EQ(f->get_string("str").value(), "héllo");
    EXPECT_EQ(f->find("strs")->array->strings[2], "ccc");
    EXPECT_EQ(f->find("nested")->array->arrays[1].array->count, 2u);
    ASSERT_EQ(f->tensors().size(), 2u);
    EXPECT_EQ(f->tensors()[1].offset, 64u);
    EXPECT_EQ(f->tensors()[1].n_bytes, 136u);
    EXPECT_EQ(f->tensors()[1].data[0], 7);
    EXPECT_EQ(f->file_size() % 64, 0u);
}

TEST(Gguf, WriterRefusesToOverwriteItsInput) {
    test::TempDir tmp;
    const std::string path = tmp.path("in.gguf");
    test::write_file(path, build({}));
    try {
        GgufWriter w(path, {path});
        w.write_header();
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("refusing to overwrite the input"), std::string::npos);
    }
    EXPECT_EQ(read_file(path), build({}));
}

TEST(Gguf, AbandonedWriteLeavesNoFile) {
    test::TempDir tmp;
    const std::string path = tmp.path("out.gguf");
    {
        GgufWriter w(path);
        w.add_tensor("t", GgmlType::F32, {4});
        w.write_header();
        // destroyed without finish()
    }
    EXPECT_FALSE(fs::exists(path));
    EXPECT_TRUE(fs::is_empty(tmp.dir));
}

// Read then write every GGUF in ../shared/data: the bytes must be identical.
TEST(GgufGolden, RoundTripIsByteIdentical) {
    QFORGE_REQUIRE_SHARED(data);
    test::TempDir tmp;
    int n = 0;
    for (const auto& e : fs::recursive_directory_iterator(data)) {
        if (e.path().extension() != ".gguf") continue;
        SCOPED_TRACE(e.path().string());
        auto in = GgufFile::open(e.path().string());
        const std::string out = tmp.path("rt.gguf");
        {
            GgufWriter w(out, {e.path().string()}, in->version());
            for (const auto& kv : in->metadata()) w.add_kv(kv.key, kv.value);
            for (const auto& t : in->tensors()) w.add_tensor(t.name, t.type, t.ne);
            w.write_header();
            for (const auto& t : in->tensors()) w.write_tensor_data(t.data, t.n_bytes);
            w.finish();
        }
        EXPECT_TRUE(read_file(out) == read_file(e.path().string()));
        ++n;
    }
    EXPECT_GE(n, 10);
}

}  // namespace
}  // namespace qforge
