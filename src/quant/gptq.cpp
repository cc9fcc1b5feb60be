#include "qforge/gptq.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "kernels/gemm.hpp"
#include "kernels/panel.hpp"
#include "qforge/error.hpp"
#include "qforge/imatrix.hpp"
#include "qforge/quantize.hpp"
#include "qforge/thread_pool.hpp"
#include "quant/blocks.hpp"

namespace qforge {

namespace {

// A format's code grid: w = scale_g * q + min_g (kernels/panel.hpp) with q in [lo, hi], or one of
// the IQ4 values.
struct Grid {
    GgmlType type;
    int lo, hi;
    bool iq4;
};
constexpr Grid kGrids[] = {
    {GgmlType::Q4_0, -8, 7, false},   {GgmlType::Q4_1, 0, 15, false},   {GgmlType::Q5_0, -16, 15, false}, {GgmlType::Q5_1, 0, 31, false},
    {GgmlType::Q8_0, -127, 127, false}, {GgmlType::Q2_K, 0, 3, false},  {GgmlType::Q3_K, -4, 3, false},   {GgmlType::Q4_K, 0, 15, false},
    {GgmlType::Q5_K, 0, 31, false},   {GgmlType::Q6_K, -32, 31, false}, {GgmlType::IQ4_NL, 0, 0, true},   {GgmlType::IQ4_XS, 0, 0, true},
};

const Grid* find_grid(GgmlType t) {
    for (const Grid& g : kGrids)
        if (g.type == t) return &g;
    return nullptr;
}

// The code of the grid nearest to v (scale s, minimum m), in kernels/panel.hpp's convention.
int round_on_grid(const Grid& g, float v, float s, float m) {
    const float x = s == 0.f ? 0.f : (v - m) / s;
    if (g.iq4) {
        int best = 0;
        for (int i = 1; i < 16; ++i)
            if (std::fabs(x - kIq4nlValues[i]) < std::fabs(x - kIq4nlValues[best])) best = i;
        return kIq4nlValues[best];
    }
    if (s == 0.f) return std::clamp(0, g.lo, g.hi);
    return static_cast<int>(std::clamp(std::nearbyint(x), static_cast<float>(g.lo), static_cast<float>(g.hi)));
}

int iq4_index(int v) {
    for (int i = 0; i < 16; ++i)
        if (kIq4nlValues[i] == v) return i;
    throw std::logic_error("gptq: not an IQ4 value");
}

// 32 codes (offset added) as ggml's nibble order: element j low, j + 16 high.
void put_nibbles32(uint8_t* qs, const int* u) {
    for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((u[j] & 15) | (u[j + 16] & 15) << 4);
}

}  // namespace

void put_block_codes(GgmlType t, uint8_t* block, const int8_t* q) {
    int u[QK_K];
    auto offset = [&](int n, int add) {
        for (int i = 0; i < n; ++i) u[i] = q[i] + add;
    };
    auto fifth_bits = [&](uint8_t* qh) {  // Q5_0/Q5_1: bit 4 of element j in bit j
        uint32_t h = 0;
        for (int j = 0; j < 32; ++j) h |= static_cast<uint32_t>((u[j] >> 4) & 1) << j;
        std::memcpy(qh, &h, 4);
    };
    switch (t) {
        case GgmlType::Q4_0: offset(32, 8), put_nibbles32(reinterpret_cast<BlockQ4_0*>(block)->qs, u); break;
        case GgmlType::Q4_1: offset(32, 0), put_nibbles32(reinterpret_cast<BlockQ4_1*>(block)->qs, u); break;
        case GgmlType::Q5_0: {
            auto* b = reinterpret_cast<BlockQ5_0*>(block);
            offset(32, 16), put_nibbles32(b->qs, u), fifth_bits(b->qh);
            break;
        }
        case GgmlType::Q5_1: {
            auto* b = reinterpret_cast<BlockQ5_1*>(block);
            offset(32, 0), put_nibbles32(b->qs, u), fifth_bits(b->qh);
            break;
        }
        case GgmlType::Q8_0: std::memcpy(reinterpret_cast<BlockQ8_0*>(block)->qs, q, 32); break;
        case GgmlType::IQ4_NL:
            for (int i = 0; i < 32; ++i) u[i] = iq4_index(q[i]);
            put_nibbles32(reinterpret_cast<BlockIQ4_NL*>(block)->qs, u);
            break;
        case GgmlType::IQ4_XS:
            for (int i = 0; i < QK_K; ++i) u[i] = iq4_index(q[i]);
            for (int ib = 0; ib < QK_K / 32; ++ib) put_nibbles32(reinterpret_cast<BlockIQ4_XS*>(block)->qs + 16 * ib, u + 32 * ib);
            break;
        case GgmlType::Q4_K:
        case GgmlType::Q5_K: {
            uint8_t* qs = t == GgmlType::Q4_K ? reinterpret_cast<BlockQ4_K*>(block)->qs : reinterpret_cast<BlockQ5_K*>(block)->qs;
            offset(QK_K, 0);
            for (int j = 0; j < 4; ++j)
                for (int l = 0; l < 32; ++l) qs[32 * j + l] = static_cast<uint8_t>((u[64 * j + l] & 15) | (u[64 * j + 32 + l] & 15) << 4);
            if (t == GgmlType::Q5_K) {
                uint8_t* qh = reinterpret_cast<BlockQ5_K*>(block)->qh;
                for (int l = 0; l < 32; ++l) {
                    int h = 0;
                    for (int j = 0; j < 4; ++j) h |= ((u[64 * j + l] >> 4) & 1) << (2 * j) | ((u[64 * j + 32 + l] >> 4) & 1) << (2 * j + 1);
                    qh[l] = static_cast<uint8_t>(h);
                }
            }
            break;
        }
        case GgmlType::Q6_K: {
            auto* b = reinterpret_cast<BlockQ6_K*>(block);
            offset(QK_K, 32);
            for (int h = 0; h < 2; ++h)
                for (int l = 0; l < 32; ++l) {
                    const int* v = u + 128 * h + l;  // v[0], v[32], v[64], v[96]
                    b->ql[64 * h + l] = static_cast<uint8_t>((v[0] & 15) | (v[64] & 15) << 4);
                    b->ql[64 * h + 32 + l] = static_cast<uint8_t>((v[32] & 15) | (v[96] & 15) << 4);
                    b->qh[32 * h + l] = static_cast<uint8_t>((v[0] >> 4) | (v[32] >> 4) << 2 | (v[64] >> 4) << 4 | (v[96] >> 4) << 6);
                }
            break;
        }
        case GgmlType::Q3_K: {
            auto* b = reinterpret_cast<BlockQ3_K*>(block);
            offset(QK_K, 4);
            std::memset(b->qs, 0, sizeof(b->qs));
            std::memset(b->hmask, 0, sizeof(b->hmask));
            for (int h = 0; h < 2; ++h)
                for (int j = 0; j < 4; ++j)
                    for (int l = 0; l < 32; ++l) {
                        const int v = u[128 * h + 32 * j + l];
                        b->qs[32 * h + l] = static_cast<uint8_t>(b->qs[32 * h + l] | (v & 3) << (2 * j));
                        b->hmask[l] = static_cast<uint8_t>(b->hmask[l] | ((v >> 2) & 1) << (4 * h + j));
                    }
            break;
        }
        case GgmlType::Q2_K: {
            auto* b = reinterpret_cast<BlockQ2_K*>(block);
            std::memset(b->qs, 0, sizeof(b->qs));
            for (int h = 0; h < 2; ++h)
                for (int j = 0; j < 4; ++j)
                    for (int l = 0; l < 32; ++l) b->qs[32 * h + l] = static_cast<uint8_t>(b->qs[32 * h + l] | (q[128 * h + 32 * j + l] & 3) << (2 * j));
            break;
        }
        default: throw std::logic_error("put_block_codes: no codes for this type");
    }
}

namespace {

// In-place Cholesky A = L L^T of an n x n symmetric positive definite matrix (lower triangle
// written, upper left as it was); false when A is not positive definite.
bool cholesky_lower(std::vector<double>& A, int64_t n) {
    for (int64_t j = 0; j < n; ++j) {
        double d = A[static_cast<size_t>(j * n + j)];
        for (int64_t k = 0; k < j; ++k) d -= A[static_cast<size_t>(j * n + k)] * A[static_cast<size_t>(j * n + k)];
        if (!(d > 0)) return false;
        d = std::sqrt(d);
        A[static_cast<size_t>(j * n + j)] = d;
        for (int64_t i = j + 1; i < n; ++i) {
            double s = A[static_cast<size_t>(i * n + j)];
            for (int64_t k = 0; k < j; ++k) s -= A[static_cast<size_t>(i * n + k)] * A[static_cast<size_t>(j * n + k)];
            A[static_cast<size_t>(i * n + j)] = s / d;
        }
    }
    return true;
}

// U, upper triangular with H^-1 = U^T U (what GPTQ's column updates use), from H.
std::vector<double> inverse_cholesky_upper(std::vector<double> A, int64_t n) {
    if (!cholesky_lower(A, n)) throw Error(ExitCode::bad_input, "gptq: the calibration Hessian is not positive definite (more calibration text, or a larger damping)");
    // Linv = L^-1 (lower), by forward substitution column by column.
    std::vector<double> Li(static_cast<size_t>(n * n), 0.0);
    for (int64_t j = 0; j < n; ++j) {
        Li[static_cast<size_t>(j * n + j)] = 1.0 / A[static_cast<size_t>(j * n + j)];
        for (int64_t i = j + 1; i < n; ++i) {
            double s = 0;
            for (int64_t k = j; k < i; ++k) s += A[static_cast<size_t>(i * n + k)] * Li[static_cast<size_t>(k * n + j)];
            Li[static_cast<size_t>(i * n + j)] = -s / A[static_cast<size_t>(i * n + i)];
        }
    }
    // H^-1 = Li^T Li (symmetric, full).
    std::vector<double> Hi(static_cast<size_t>(n * n));
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j) {
            double s = 0;
            for (int64_t k = i; k < n; ++k) s += Li[static_cast<size_t>(k * n + i)] * Li[static_cast<size_t>(k * n + j)];
            Hi[static_cast<size_t>(i * n + j)] = Hi[static_cast<size_t>(j * n + i)] = s;
        }
    // Its upper Cholesky factor U (H^-1 = U^T U) is the transpose of the lower one.
    if (!cholesky_lower(Hi, n)) throw Error(ExitCode::bad_input, "gptq: the inverse Hessian is not positive definite (try a larger damping)");
    std::vector<double> U(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = i; j < n; ++j) U[static_cast<size_t>(i * n + j)] = Hi[static_cast<size_t>(j * n + i)];
    return U;
}

}  // namespace

bool gptq_supports(GgmlType t) { return find_grid(t) != nullptr; }

bool gptq_skips(const std::string& name) { return name == "output.weight"; }

namespace {

// What GPTQ's column loop needs of a format, per thread: a block's grid (a scale and minimum per
// group of G, from the block's error-updated weights), the value of a code on it, and the codes
// once the block is done.
class BlockCodec {
   public:
    virtual ~BlockCodec() = default;
    virtual void choose(int64_t row, int64_t i0, const float* w, const float* importance, float* sc, float* mn) = 0;
    virtual float value(float s, float m, int code) const { return s * static_cast<float>(code) + m; }
    virtual void emit(int64_t row, int64_t i0, const int* codes) = 0;
};

// Activation order with static groups: every block's grid from the row as it is, then the columns
// in perm's order (U is the factor of H^-1 in that order), errors spread lazily in batches of 128.
void gptq_act_order(float* W, int64_t rows, int64_t K, int64_t block, int G, const Grid& grid, const std::vector<double>& U,
                    const std::vector<int64_t>& perm, const std::vector<float>& importance, ThreadPool& pool,
                    const std::function<std::unique_ptr<BlockCodec>()>& make_codec) {
    constexpr int64_t kBatch = 128;
    pool.parallel_for(rows, [&](int64_t r0, int64_t r1, int) {
        const auto codec = make_codec();
        std::vector<float> sc(static_cast<size_t>(K / G)), mn(static_cast<size_t>(K / G));
        std::vector<double> wp(static_cast<size_t>(K)), err(static_cast<size_t>(kBatch));
        std::vector<int> codes(static_cast<size_t>(K));
        for (int64_t r = r0; r < r1; ++r) {
            float* w = W + r * K;
            std::fill(mn.begin(), mn.end(), 0.f);
            for (int64_t i0 = 0; i0 < K; i0 += block)
                codec->choose(r, i0, w + i0, importance.data() + i0, sc.data() + i0 / G, mn.data() + i0 / G);
            for (int64_t c = 0; c < K; ++c) wp[static_cast<size_t>(c)] = w[perm[static_cast<size_t>(c)]];
            for (int64_t b0 = 0; b0 < K; b0 += kBatch) {
                const int64_t b1 = std::min(K, b0 + kBatch);
                for (int64_t c = b0; c < b1; ++c) {
                    const int64_t oc = perm[static_cast<size_t>(c)];
                    const float s = sc[static_cast<size_t>(oc / G)], m = mn[static_cast<size_t>(oc / G)];
                    const int code = round_on_grid(grid, static_cast<float>(wp[static_cast<size_t>(c)]), s, m);
                    codes[static_cast<size_t>(oc)] = code;
                    const float q = codec->value(s, m, code);
                    const double e = (wp[static_cast<size_t>(c)] - q) / U[static_cast<size_t>(c * K + c)];
                    wp[static_cast<size_t>(c)] = q;
                    err[static_cast<size_t>(c - b0)] = e;
                    const double* u = U.data() + static_cast<size_t>(c * K);
                    for (int64_t k = c + 1; k < b1; ++k) wp[static_cast<size_t>(k)] -= e * u[k];
                }
                for (int64_t c = b0; c < b1; ++c) {
                    const double e = err[static_cast<size_t>(c - b0)];
                    if (e == 0) continue;
                    const double* u = U.data() + static_cast<size_t>(c * K);
                    for (int64_t k = b1; k < K; ++k) wp[static_cast<size_t>(k)] -= e * u[k];
                }
            }
            for (int64_t c = 0; c < K; ++c) w[perm[static_cast<size_t>(c)]] = static_cast<float>(wp[static_cast<size_t>(c)]);
            for (int64_t i0 = 0; i0 < K; i0 += block) codec->emit(r, i0, codes.data() + i0);
        }
    });
}

// The column loop: W (rows x K) left to right in blocks, each column rounded on its block's grid
// and its error spread over the columns to come through U (H^-1 = U^T U).
void gptq_core(float* W, int64_t rows, int64_t K, int64_t block, int G, const Grid& grid, const std::vector<double>& H,
               const GptqOptions& opt, const std::function<std::unique_ptr<BlockCodec>()>& make_codec) {
    if (H.size() != static_cast<size_t>(K * K)) throw std::logic_error("gptq: Hessian size");
    // Damping, and columns no input ever reached (their weights do not matter: zero, H_ii = 1).
    std::vector<double> Hd = H;
    double mean_diag = 0;
    for (int64_t i = 0; i < K; ++i) mean_diag += H[static_cast<size_t>(i * K + i)];
    mean_diag /= static_cast<double>(K);
    if (!(mean_diag > 0)) mean_diag = 1;
    std::vector<float> importance(static_cast<size_t>(K));
    for (int64_t i = 0; i < K; ++i) {
        double& d = Hd[static_cast<size_t>(i * K + i)];
        if (d <= 0) {
            d = 1;
            for (int64_t r = 0; r < rows; ++r) W[r * K + i] = 0.f;
        }
        importance[static_cast<size_t>(i)] = static_cast<float>(d);
        d += opt.damp * mean_diag;
    }
    const int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    ThreadPool pool(threads);
    if (opt.act_order) {
        // Columns by decreasing diag(H); H and U in that order.
        std::vector<int64_t> perm(static_cast<size_t>(K));
        for (int64_t i = 0; i < K; ++i) perm[static_cast<size_t>(i)] = i;
        std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return importance[static_cast<size_t>(a)] > importance[static_cast<size_t>(b)]; });
        std::vector<double> Hp(static_cast<size_t>(K * K));
        for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < K; ++j) Hp[static_cast<size_t>(i * K + j)] = Hd[static_cast<size_t>(perm[static_cast<size_t>(i)] * K + perm[static_cast<size_t>(j)])];
        const std::vector<double> Up = inverse_cholesky_upper(std::move(Hp), K);
        gptq_act_order(W, rows, K, block, G, grid, Up, perm, importance, pool, make_codec);
        return;
    }
    const std::vector<double> U = inverse_cholesky_upper(std::move(Hd), K);
    // Rows are independent given U: each thread takes whole rows.
    pool.parallel_for(rows, [&](int64_t r0, int64_t r1, int) {
        const auto codec = make_codec();
        std::vector<int> codes(static_cast<size_t>(block));
        std::vector<float> sc(static_cast<size_t>(block / G)), mn(static_cast<size_t>(block / G));
        std::vector<double> err(static_cast<size_t>(block));
        for (int64_t r = r0; r < r1; ++r) {
            float* w = W + r * K;
            for (int64_t i0 = 0; i0 < K; i0 += block) {
                std::fill(mn.begin(), mn.end(), 0.f);
                codec->choose(r, i0, w + i0, importance.data() + i0, sc.data(), mn.data());
                for (int64_t j = 0; j < block; ++j) {
                    const int64_t c = i0 + j;
                    const float s = sc[static_cast<size_t>(j / G)], m = mn[static_cast<size_t>(j / G)];
                    const int code = round_on_grid(grid, w[c], s, m);
                    codes[static_cast<size_t>(j)] = code;
                    const float q = codec->value(s, m, code);
                    const double e = (static_cast<double>(w[c]) - q) / U[static_cast<size_t>(c * K + c)];
                    w[c] = q;
                    err[static_cast<size_t>(j)] = e;
                    const double* u = U.data() + static_cast<size_t>(c * K);
                    for (int64_t k = c + 1; k < i0 + block; ++k) w[k] -= static_cast<float>(e * u[k]);
                }
                codec->emit(r, i0, codes.data());
                // The block's errors onto every later column.
                for (int64_t j = 0; j < block; ++j) {
                    const double e = err[static_cast<size_t>(j)];
                    if (e == 0) continue;
                    const double* u = U.data() + static_cast<size_t>((i0 + j) * K);
                    for (int64_t k = i0 + block; k < K; ++k) w[k] -= static_cast<float>(e * u[k]);
                }
            }
        }
    });
}

// ggml's block formats: the block's scales from the format's own quantizer (weighted by diag H),
// the codes written into its bytes.
class GgmlCodec final : public BlockCodec {
   public:
    GgmlCodec(GgmlType t, const PanelFormat* pf, int64_t K, uint8_t* out)
        : t_(t), pf_(pf), out_(out), block_(type_traits(t).block_size), block_bytes_(type_traits(t).type_size),
          row_(static_cast<size_t>(K / block_) * block_bytes_), q8_(static_cast<size_t>(block_)) {}
    void choose(int64_t, int64_t i0, const float* w, const float* importance, float* sc, float* mn) override {
        uint8_t* qb = row_.data() + static_cast<size_t>(i0 / block_) * block_bytes_;
        quantize_rows(w, qb, 1, block_, t_, importance, 1);
        pf_->unpack(qb, block_, q8_.data(), sc, mn);
    }
    void emit(int64_t row, int64_t i0, const int* codes) override {
        if (!out_) return;  // the block as stored: the quantizer's scales with these codes
        uint8_t* qb = row_.data() + static_cast<size_t>(i0 / block_) * block_bytes_;
        for (int64_t j = 0; j < block_; ++j) q8_[static_cast<size_t>(j)] = static_cast<int8_t>(codes[j]);
        put_block_codes(t_, qb, q8_.data());
        std::memcpy(out_ + static_cast<size_t>(row) * row_.size() + static_cast<size_t>(i0 / block_) * block_bytes_, qb, block_bytes_);
    }

   private:
    GgmlType t_;
    const PanelFormat* pf_;
    uint8_t* out_;
    int64_t block_;
    size_t block_bytes_;
    std::vector<uint8_t> row_;  // the row's blocks as chosen
    std::vector<int8_t> q8_;
};

// MLX affine: each group's scale and bias from the weighted fit, stored as MLX dequantizes them.
class MlxCodec final : public BlockCodec {
   public:
    explicit MlxCodec(MlxAffineTensor& t) : t_(t), groups_(t.cols / t.p.group_size), words_(t.cols * t.p.bits / 32) {}
    void choose(int64_t row, int64_t i0, const float* w, const float* importance, float* sc, float* mn) override {
        mlx_affine_fit_group(w, importance, t_.p, sc, mn);
        const size_t g = static_cast<size_t>(row * groups_ + i0 / t_.p.group_size);
        mlx_store(t_.p.dtype, t_.scales.data(), g, *sc);
        mlx_store(t_.p.dtype, t_.biases.data(), g, *mn);
    }
    float value(float s, float m, int code) const override {
        return mlx_round(t_.p.dtype, mlx_round(t_.p.dtype, static_cast<float>(code) * s) + m);
    }
    void emit(int64_t row, int64_t i0, const int* codes) override {
        uint32_t* words = t_.wq.data() + row * words_;
        for (int j = 0; j < t_.p.group_size; ++j) mlx_put_code(words, i0 + j, t_.p.bits, static_cast<uint32_t>(codes[j]));
    }

   private:
    MlxAffineTensor& t_;
    int64_t groups_, words_;
};

}  // namespace

void gptq_matrix(float* W, int64_t rows, int64_t K, GgmlType t, const std::vector<double>& H, const GptqOptions& opt, uint8_t* out) {
    const Grid* grid = find_grid(t);
    const PanelFormat* pf = find_panel_format(t);
    if (!grid || !pf) throw_usage(std::string("gptq: no code grid for ") + type_traits(t).name);
    const int64_t block = type_traits(t).block_size;
    if (K % block != 0) throw_usage("gptq: rows of " + std::to_string(K) + " are not whole " + type_traits(t).name + " blocks");
    gptq_core(W, rows, K, block, pf->G, *grid, H, opt, [&] { return std::make_unique<GgmlCodec>(t, pf, K, out); });
}

MlxAffineTensor gptq_mlx_matrix(float* W, int64_t rows, int64_t K, const MlxAffineParams& p, const std::vector<double>& H,
                                const GptqOptions& opt) {
    if (K % p.group_size != 0) throw_usage("gptq: rows of " + std::to_string(K) + " are not whole groups of " + std::to_string(p.group_size));
    MlxAffineTensor t = mlx_affine_empty(p, rows, K);
    const Grid grid{GgmlType::F32, 0, (1 << p.bits) - 1, false};
    gptq_core(W, rows, K, p.group_size, p.group_size, grid, H, opt, [&] { return std::make_unique<MlxCodec>(t); });
    return t;
}

Hessians collect_hessians(const Model& model, const std::vector<int32_t>& tokens, int n_ctx, int n_chunks, int threads,
                          const std::function<void(int, int)>& progress) {
    if (n_ctx < 8) throw_usage("gptq: the calibration context must be at least 8 tokens");
    const int max_chunks = static_cast<int>(tokens.size() / static_cast<size_t>(n_ctx));
    n_chunks = n_chunks > 0 ? std::min(n_chunks, max_chunks) : max_chunks;
    if (n_chunks < 1)
        throw_usage("the calibration text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " + std::to_string(n_ctx));
    threads = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    Context ctx(model, n_ctx, KvCacheType::F16, threads);
    Hessians hs;
    const GemmFn gemm = best_gemm_f32();
    std::vector<float> xt, prod;
    const float* last_x = nullptr;
    std::shared_ptr<std::vector<double>> last_h;
    char name[64];
    ctx.set_activation_observer([&](int layer, const char* tensor, const float* x, int rows, int cols) {
        if (layer < 0)
            std::snprintf(name, sizeof(name), "%s.weight", tensor);
        else
            std::snprintf(name, sizeof(name), "blk.%d.%s.weight", layer, tensor);
        auto& H = hs.h[name];
        hs.rows[name] += rows;
        // q/k/v (and gate/up) are observed one after the other with the same input: one Hessian.
        if (x == last_x) {
            if (!H) H = last_h;
            return;
        }
        if (!H) H = std::make_shared<std::vector<double>>(static_cast<size_t>(cols) * static_cast<size_t>(cols), 0.0);
        // X^T X through the f32 product: the columns of X as rows.
        xt.resize(static_cast<size_t>(rows) * static_cast<size_t>(cols));
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < cols; ++c)
                xt[static_cast<size_t>(c) * static_cast<size_t>(rows) + static_cast<size_t>(r)] = x[static_cast<size_t>(r) * static_cast<size_t>(cols) + static_cast<size_t>(c)];
        prod.resize(static_cast<size_t>(cols) * static_cast<size_t>(cols));
        gemm(xt.data(), static_cast<size_t>(rows), cols, xt.data(), static_cast<size_t>(rows), cols, rows, prod.data(), static_cast<size_t>(cols));
        for (size_t i = 0; i < prod.size(); ++i) (*H)[i] += prod[i];
        last_x = x;
        last_h = H;
    });
    eval_calibration_chunks(ctx, tokens, n_ctx, n_chunks, n_ctx, false, [&](int c) {
        last_x = nullptr;
        if (progress && c > 0) progress(c, n_chunks);
    });
    if (progress) progress(n_chunks, n_chunks);
    return hs;
}

QuantizeAdjust gptq_adjust(std::shared_ptr<const Hessians> hs, const GptqOptions& go) {
    return [hs = std::move(hs), go](const std::string& name, GgmlType to, float* values, int64_t nrows, int64_t ncols, uint8_t* out) {
        const auto it = hs->h.find(name);
        if (it == hs->h.end() || gptq_skips(name) || !gptq_supports(to) || ncols % type_traits(to).block_size != 0) return false;
        gptq_matrix(values, nrows, ncols, to, *it->second, go, out);
        return true;
    };
}

Hessians Hessians::deep_copy() const {
    Hessians c;
    c.rows = rows;
    std::map<const std::vector<double>*, std::shared_ptr<std::vector<double>>> copies;
    for (const auto& [name, H] : h) {
        auto& m = copies[H.get()];
        if (!m) m = std::make_shared<std::vector<double>>(*H);
        c.h[name] = m;
    }
    return c;
}

Imatrix Hessians::importance(const std::string& dataset, bool with_output) const {
    Imatrix m;
    m.dataset = dataset;
    for (const auto& [name, H] : h) {
        if (name == "output.weight" && !with_output) continue;
        const int64_t K = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(H->size()))));
        const double n = static_cast<double>(std::max<int64_t>(1, rows.at(name)));
        std::vector<float> v(static_cast<size_t>(K));
        for (int64_t i = 0; i < K; ++i) v[static_cast<size_t>(i)] = static_cast<float>((*H)[static_cast<size_t>(i * K + i)] / n);
        m.entries[name] = std::move(v);
    }
    return m;
}

}  // namespace qforge
