// AWQ: the scales leave the float model unchanged (up to f32 rounding), lower the quantized
// matrices' output error on the calibration inputs, and the calibrated paths of quantize and
// convert --to mlx run end to end.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "qforge/awq.hpp"
#include "qforge/gguf.hpp"
#include "qforge/gptq.hpp"
#include "qforge/quantize_model.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

const std::string kDemo = std::string(QFORGE_SOURCE_DIR) + "/models/tiny-demo-8m";

std::vector<int32_t> calib_tokens(const Model& m) {
    return m.tokenizer().tokenize_file(std::string(QFORGE_SOURCE_DIR) + "/data/calib/pride-and-prejudice-excerpt.txt");
}

TEST(Awq, ScalesKeepTheFloatModelAndLowerTheError) {
    test::TempDir tmp;
    const std::string f32 = tmp.path("demo-f32.gguf");
    ASSERT_EQ(test::run_qforge({"convert", kDemo, "-o", f32, "--outtype", "f32"}).status, 0);
    auto model = Model::load(f32);
    Hessians hs = collect_hessians(*model, calib_tokens(*model), 128, 4, 2);
    std::map<std::string, GgmlType> types;
    for (const auto& [name, view] : model->matrices()) types[name] = GgmlType::Q4_0;
    const AwqScales s = awq_search(*model, hs, ggml_fake_quant(types), AwqOptions{10, 256, 2});
    const int n_layer = model->hparams().n_layer;
    ASSERT_EQ(s.groups.size(), static_cast<size_t>(4 * n_layer));
    int scaled = 0;
    for (const auto& g : s.groups) {
        EXPECT_LE(g.err_scaled, g.err_plain) << g.what;
        scaled += g.alpha > 0;
    }
    EXPECT_GT(scaled, n_layer) << "AWQ should scale most groups of a trained model at 4 bits";

    // The scaled model, kept in f32, gives the same logits.
    auto in = GgufFile::open(f32);
    SourceModel src = source_from_gguf(*in);
    awq_apply_to_source(src, std::make_shared<AwqScales>(s));
    QuantizeOptions q;
    q.ftype = "F32";
    const std::string scaled_path = tmp.path("demo-awq-f32.gguf");
    quantize_model(src, scaled_path, q);
    auto model2 = Model::load(scaled_path);
    const std::vector<int32_t> prompt = model->tokenizer().tokenize("Once upon a time, there was a little dog named Max.", true);
    std::vector<float> a, b;
    Context ca(*model, 64, KvCacheType::F32, 2), cb(*model2, 64, KvCacheType::F32, 2);
    ca.eval(prompt, a, true);
    cb.eval(prompt, b, true);
    ASSERT_EQ(a.size(), b.size());
    double max_diff = 0, max_abs = 0;
    for (size_t i = 0; i < a.size(); ++i) max_diff = std::max(max_diff, static_cast<double>(std::fabs(a[i] - b[i]))), max_abs = std::max(max_abs, static_cast<double>(std::fabs(a[i])));
    EXPECT_LT(max_diff, 1e-3 * max_abs) << "max |logit| " << max_abs;
}

TEST(Awq, CalibratedMethodsEndToEnd) {
    test::TempDir tmp;
    const std::string f32 = tmp.path("demo-f32.gguf");
    ASSERT_EQ(test::run_qforge({"convert", kDemo, "-o", f32, "--outtype", "f32"}).status, 0);
    for (const char* m : {"awq-gptq"}) {
        const auto r = test::run_qforge({"quantize", f32, tmp.path(std::string(m) + ".gguf"), "Q4_0", "--method", m, "--calib-chunks", "1",
                                         "--calib-ctx", "128", "-q"});
        ASSERT_EQ(r.status, 0) << r.err;
        EXPECT_NE(r.out.find("awq: "), std::string::npos) << r.out;
        auto m2 = Model::load(tmp.path(std::string(m) + ".gguf"));
        EXPECT_EQ(m2->layers[0].wq.type, GgmlType::Q4_0);
    }
    for (const char* m : {"gptq", "awq"}) {
        const std::string dir = tmp.path(std::string("mlx-") + m);
        const auto r = test::run_qforge({"convert", kDemo, "--to", "mlx", "-o", dir, "--bits", "4", "--group-size", "64", "--method", m,
                                         "--calib-chunks", "1", "--calib-ctx", "128"});
        ASSERT_EQ(r.status, 0) << r.err;
        EXPECT_NE(r.out.find("calibrated affine 4-bit g64"), std::string::npos) << r.out;
        auto m2 = Model::load(dir);  // loads, and runs
        Context ctx(*m2, 32, KvCacheType::F16, 2);
        std::vector<float> logits;
        ctx.eval({1, 415, 2936}, logits);
        for (float v : logits) ASSERT_TRUE(std::isfinite(v));
    }
    // Errors: the calibrated MLX methods need a Hugging Face source and affine codes.
    const auto bad = test::run_qforge({"convert", f32, "--to", "mlx", "-o", tmp.path("x"), "--method", "gptq"});
    EXPECT_NE(bad.status, 0);
    EXPECT_NE(bad.err.find("--method gptq"), std::string::npos) << bad.err;
    const auto bad2 = test::run_qforge({"convert", kDemo, "--to", "mlx", "-o", tmp.path("y"), "--mode", "mxfp4", "--method", "awq"});
    EXPECT_NE(bad2.status, 0);
}

}  // namespace
}  // namespace qforge
