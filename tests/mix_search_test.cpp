// The error-driven mix (quantize --target-bpw / --target-size) on the bundled demo model and the
// bundled calibration text.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "qforge/error.hpp"
#include "qforge/mix_search.hpp"
#include "qforge/model.hpp"

namespace qforge {
namespace {

const std::string kDemo = std::string(QFORGE_SOURCE_DIR) + "/models/tiny-demo-8m";
const std::string kCalib = std::string(QFORGE_SOURCE_DIR) + "/data/calib/pride-and-prejudice-excerpt.txt";

std::vector<int32_t> calib_tokens(const Model& m) {
    std::ifstream in(kCalib);
    std::stringstream s;
    s << in.rdbuf();
    return m.tokenizer().tokenize(s.str(), true);
}

MixSearchOptions small_options(const Model& m, uint64_t budget) {
    MixSearchOptions o;
    o.calib_tokens = calib_tokens(m);
    o.n_ctx = 64;
    o.n_chunks = 1;
    o.threads = 2;
    o.candidates = {GgmlType::Q2_K, GgmlType::Q8_0};
    o.budget_bytes = budget;
    return o;
}

TEST(MixSearch, ChoosesWithinTheBudgetAndSpendsItWhereItPays) {
    auto m = Model::load(kDemo);
    const WeightView wq0 = m->layers[0].wq, out0 = m->output;
    const std::string meas = ::testing::TempDir() + "qforge_mix_meas.txt";
    std::remove(meas.c_str());
    // The smallest and the largest mixes bound the budget.
    auto o = small_options(*m, UINT64_MAX);
    o.measurements_file = meas;
    const MixResult all_best = search_mix(*m, o);
    ASSERT_GT(all_best.evaluations, 0);
    uint64_t lo = all_best.fixed_bytes, hi = all_best.fixed_bytes;
    double kld_lo = 0;
    for (const auto& c : all_best.choices) {
        EXPECT_EQ(c.type, GgmlType::Q8_0) << c.name;  // an unlimited budget takes the best everywhere
        hi += c.bytes;
    }
    // The weights are back as they were.
    EXPECT_EQ(m->layers[0].wq.data, wq0.data);
    EXPECT_EQ(m->layers[0].wq.type, wq0.type);
    EXPECT_EQ(m->output.data, out0.data);
    o.budget_bytes = 0;
    EXPECT_THROW(search_mix(*m, o), Error);  // below the smallest mix: a usage error
    o.budget_bytes = hi;
    const MixResult again = search_mix(*m, o);
    EXPECT_EQ(again.evaluations, 0) << "the measurements file is reused";
    ASSERT_EQ(again.choices.size(), all_best.choices.size());
    for (size_t i = 0; i < again.choices.size(); ++i) EXPECT_EQ(again.choices[i].type, all_best.choices[i].type);

    // Budgets in between: within the budget, and more bytes never predict more divergence.
    for (const auto& c : all_best.choices) lo += c.bytes * 84 / 272;  // Q2_K's bytes per 256 against Q8_0's
    double last = 1e30;
    for (double f : {0.0, 0.25, 0.5, 0.75, 1.0}) {
        o.budget_bytes = lo + static_cast<uint64_t>(f * static_cast<double>(hi - lo));
        const MixResult r = search_mix(*m, o);
        EXPECT_EQ(r.evaluations, 0);
        EXPECT_LE(r.matrix_bytes + r.fixed_bytes, o.budget_bytes) << f;
        EXPECT_LE(r.predicted_kld, last + 1e-12) << f;
        last = r.predicted_kld;
        if (f == 0.0) {
            kld_lo = r.predicted_kld;
            for (const auto& c : r.choices) EXPECT_EQ(c.type, GgmlType::Q2_K) << c.name;
        }
    }
    EXPECT_GT(kld_lo, all_best.predicted_kld * 10) << "2-bit matrices cost far more divergence than 8-bit ones";
    std::remove(meas.c_str());

    // The recipe reads back as exact, anchored patterns, one per matrix.
    const std::string recipe_path = ::testing::TempDir() + "qforge_mix_recipe.txt";
    {
        std::ofstream f(recipe_path);
        f << mix_recipe_text(all_best);
    }
    const auto tt = load_tensor_type_file(recipe_path);
    ASSERT_EQ(tt.size(), all_best.choices.size());
    for (size_t i = 0; i < tt.size(); ++i) {
        EXPECT_EQ(tt[i].second, all_best.choices[i].type);
        const std::regex re(tt[i].first);
        for (size_t j = 0; j < all_best.choices.size(); ++j)
            EXPECT_EQ(std::regex_search(all_best.choices[j].name, re), i == j) << tt[i].first << " vs " << all_best.choices[j].name;
    }
    std::remove(recipe_path.c_str());
}

TEST(MixSearch, BadInput) {
    const std::string p = ::testing::TempDir() + "qforge_bad_recipe.txt";
    {
        std::ofstream f(p);
        f << "# a comment\n^output\\.weight$=Q6_K\nno-equals-sign\n";
    }
    EXPECT_THROW(load_tensor_type_file(p), Error);
    {
        std::ofstream f(p);
        f << "^output\\.weight$=Q7_K\n";
    }
    EXPECT_THROW(load_tensor_type_file(p), Error);
    std::remove(p.c_str());
    EXPECT_THROW(load_tensor_type_file(p), Error);  // missing file

    EXPECT_EQ(parse_target_size("123"), 123u);
    EXPECT_EQ(parse_target_size("900K"), 900u * 1024);
    EXPECT_EQ(parse_target_size("14.5M"), static_cast<uint64_t>(14.5 * 1024 * 1024));
    EXPECT_EQ(parse_target_size("2GiB"), 2ull << 30);
    for (const char* bad : {"", "abc", "-5M", "12Q", "0"}) EXPECT_THROW(parse_target_size(bad), Error) << bad;

    auto m = Model::load(kDemo);
    auto o = small_options(*m, UINT64_MAX);
    o.calib_tokens.resize(10);
    EXPECT_THROW(search_mix(*m, o), Error);  // too little calibration text
}

}  // namespace
}  // namespace qforge
