#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "qforge/error.hpp"
#include "qforge/safetensors.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> make(const std::string& header, size_t data_bytes) {
    std::vector<uint8_t> b(8 + header.size() + data_bytes, 0);
    const uint64_t n = header.size();
    std::memcpy(b.data(), &n, 8);
    if (!header.empty()) std::memcpy(b.data() + 8, header.data(), header.size());
    return b;
}

std::string expect_bad(const std::vector<uint8_t>& bytes) {
    try {
        SafetensorsFile::parse(bytes, "bad.safetensors");
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::bad_input);
        return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
}

TEST(Safetensors, ParsesValidFile) {
    auto b = make(R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]}})", 12);
    auto f = SafetensorsFile::parse(b, "x");
    ASSERT_EQ(f->tensors().size(), 1u);
    EXPECT_EQ(f->tensors()[0].n_elements(), 6);
    EXPECT_EQ(f->metadata()[0].second, "pt");
}

TEST(Safetensors, RejectsMalformed) {
    EXPECT_NE(expect_bad({1, 2, 3}).find("truncated"), std::string::npos);
    auto huge = make("{}", 0);
    const uint64_t n = 1ull << 50;
    std::memcpy(huge.data(), &n, 8);
    EXPECT_NE(expect_bad(huge).find("exceeds"), std::string::npos);
    EXPECT_NE(expect_bad(make("{not json", 0)).find("invalid JSON"), std::string::npos);
    EXPECT_NE(expect_bad(make(R"({"w":{"dtype":"X9","shape":[1],"data_offsets":[0,1]}})", 1)).find("unknown dtype"),
              std::string::npos);
    EXPECT_NE(expect_bad(make(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 8)).find("do not match"),
              std::string::npos);
    EXPECT_NE(expect_bad(make(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8)).find("past the end"),
              std::string::npos);
    EXPECT_NE(expect_bad(make(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 8)).find("negative"),
              std::string::npos);
    EXPECT_NE(expect_bad(make(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 8))
                  .find("overflows"),
              std::string::npos);
    EXPECT_NE(expect_bad(make(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", 8))
                  .find("overlap"),
              std::string::npos);
    EXPECT_NE(expect_bad(make(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2))
                  .find("duplicate"),
              std::string::npos);
    EXPECT_NE(expect_bad(make("{\"\xff\":1}", 0)).find("UTF-8"), std::string::npos);
}

TEST(Safetensors, WriterRoundTrip) {
    test::TempDir tmp;
    const std::string p = tmp.path("w.safetensors");
    {
        SafetensorsWriter w(p);
        w.set_metadata({{"format", "mlx"}});
        w.add_tensor("b", StDtype::I32, {2});
        w.add_tensor("a", StDtype::BF16, {1, 3});
        w.write_header();
        int32_t b[2] = {-1, 5};
        uint16_t a[3] = {1, 2, 3};
        w.write_tensor_data(b, 8);
        w.write_tensor_data(a, 6);
        w.finish();
    }
    auto f = SafetensorsFile::open(p);
    ASSERT_EQ(f->tensors().size(), 2u);
    EXPECT_EQ(f->tensors()[0].name, "b");
    EXPECT_EQ(f->find("a")->shape, (std::vector<int64_t>{1, 3}));
    EXPECT_EQ(reinterpret_cast<const uint16_t*>(f->find("a")->data)[2], 3);
}

TEST(Safetensors, ShardedModelChecksIndex) {
    test::TempDir tmp;
    for (const char* name : {"m-1.safetensors", "m-2.safetensors"}) {
        SafetensorsWriter w(tmp.path(name));
        w.add_tensor(std::string(name) == "m-1.safetensors" ? "x" : "y", StDtype::F32, {1});
        w.write_header();
        float v = 1;
        w.write_tensor_data(&v, 4);
        w.finish();
    }
    const std::string good = R"({"weight_map":{"x":"m-1.safetensors","y":"m-2.safetensors"}})";
    test::write_file(tmp.path("model.safetensors.index.json"), std::vector<uint8_t>(good.begin(), good.end()));
    auto m = SafetensorsModel::open(tmp.dir.string());
    ASSERT_EQ(m.tensors().size(), 2u);
    EXPECT_EQ(m.tensors()[1]->name, "y");
    const std::string bad = R"({"weight_map":{"x":"m-2.safetensors","y":"m-2.safetensors"}})";
    test::write_file(tmp.path("model.safetensors.index.json"), std::vector<uint8_t>(bad.begin(), bad.end()));
    EXPECT_THROW(SafetensorsModel::open(tmp.dir.string()), Error);
}

// Read then write every safetensors file in ../shared/data: the bytes must be identical.
TEST(SafetensorsGolden, RoundTripIsByteIdentical) {
    QFORGE_REQUIRE_SHARED(data);
    test::TempDir tmp;
    int n = 0;
    for (const auto& e : fs::recursive_directory_iterator(data)) {
        if (e.path().extension() != ".safetensors") continue;
        SCOPED_TRACE(e.path().string());
        auto in = SafetensorsFile::open(e.path().string());
        const std::string out = tmp.path("rt.safetensors");
        {
            SafetensorsWriter w(out, {e.path().string()}, in->layout());
            if (in->has_metadata()) w.set_metadata(in->metadata());
            for (const auto& t : in->tensors()) w.add_tensor(t.name, t.dtype, t.shape);
            w.write_header();
            for (const auto& t : in->tensors()) w.write_tensor_data(t.data, t.n_bytes());
            w.finish();
        }
        EXPECT_TRUE(test::read_file(out) == test::read_file(e.path().string()));
        ++n;
    }
    EXPECT_GE(n, 60);
}

TEST(SafetensorsGolden, ShardedHfModel) {
    QFORGE_REQUIRE_SHARED(data);
    auto m = SafetensorsModel::open(data + "/models/tiny-llama-23m");
    EXPECT_EQ(m.files().size(), 4u);
    EXPECT_EQ(m.tensors().size(), 57u);
    ASSERT_NE(m.find("lm_head.weight"), nullptr);
    EXPECT_EQ(m.find("lm_head.weight")->dtype, StDtype::BF16);
}

}  // namespace
}  // namespace qforge
