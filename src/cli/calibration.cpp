#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>

#include "cli/commands.hpp"
#include "qforge/awq.hpp"
#include "qforge/gptq.hpp"
#include "qforge/mlx_model.hpp"
#include "qforge/progress.hpp"

namespace qforge::cli {

void print_awq_summary(const AwqScales& s) {
    int scaled = 0;
    double plain = 0, with = 0;
    for (const auto& g : s.groups) {
        scaled += g.alpha > 0;
        plain += g.err_plain;
        with += g.err_scaled;
    }
    std::printf("awq: %d of %zu matrix groups scaled; their output error on the calibration inputs %.3fx of plain quantization\n", scaled,
                s.groups.size(), plain > 0 ? with / plain : 1.0);
}

void setup_mlx_calibration(const std::string& hf_dir, const CalibrationArgs& a, MlxConvertOptions& o) {
    const bool awq = a.method.starts_with("awq"), gptq = a.method.ends_with("gptq");
    const std::string calib = a.calib.empty() ? default_calibration_text() : a.calib;
    auto model = Model::load(hf_dir);
    const auto tokens = model->tokenizer().tokenize_file(calib);
    LazyProgress progress(a.method + ": calibration");
    auto hs = std::make_shared<Hessians>(
        collect_hessians(*model, tokens, a.calib_ctx > 0 ? a.calib_ctx : 512, a.calib_chunks, a.threads, std::ref(progress)));
    progress.finish();
    const MlxAffineParams base{o.bits, o.group_size, o.dtype.value_or(MlxDtype::F16)};
    if (awq) {
        // Scales chosen for the error of MLX's own rounding (AWQ searches with round-to-nearest; the
        // weighted fit there made the search ~8 times slower).
        const FakeQuant fq = [base](const std::string&, const float* w, int64_t rows, int64_t cols, const float*, float* out) {
            MlxAffineTensor t = mlx_affine_empty(base, rows, cols);
            mlx_affine_quantize(w, rows, cols, base, t.wq.data(), t.scales.data(), t.biases.data());
            const std::vector<float> v = mlx_dequantize_f32(t);
            std::copy(v.begin(), v.end(), out);
        };
        auto scales = std::make_shared<AwqScales>(awq_search(*model, *hs, fq, AwqOptions{20, 512, a.threads}));
        print_awq_summary(*scales);
        o.transform = [scales](const std::string& name, float* v, int64_t rows, int64_t cols) { scales->apply(name, v, rows, cols); };
    }
    auto importance = std::make_shared<Imatrix>(hs->importance(calib, true));
    o.calibrated = [hs, importance, gptq, damp = a.damp, threads = a.threads, act = a.act_order](const std::string& name, std::vector<float>& v, int64_t rows,
                                                                              int64_t cols, const MlxAffineParams& p) -> std::optional<MlxAffineTensor> {
        if (gptq && !gptq_skips(name))
            if (const auto it = hs->h.find(name); it != hs->h.end()) return gptq_mlx_matrix(v.data(), rows, cols, p, *it->second, GptqOptions{damp, threads, act});
        const auto it = importance->entries.find(name);
        MlxAffineTensor t = mlx_affine_empty(p, rows, cols);
        mlx_affine_quantize_weighted(v.data(), rows, cols, p, it == importance->entries.end() ? nullptr : it->second.data(), t.wq.data(),
                                     t.scales.data(), t.biases.data());
        return t;
    };
}

}  // namespace qforge::cli
