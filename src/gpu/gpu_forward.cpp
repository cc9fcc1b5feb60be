#include "gpu/gpu_forward.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>

#include "gpu/shaders.hpp"
#include "gpu/vk_runtime.hpp"
#include "qforge/error.hpp"
#include "qforge/quantize.hpp"

namespace qforge {

using gpu::VkBuf;
using gpu::VkKernel;
using gpu::VkRuntime;

namespace {

struct MatvecPush {
    uint32_t rows, cols, accumulate, has_bias, B;
    uint32_t norm_parts;  // the rest: matvec_dot.comp only (see there)
    float eps;
};
// What generation's integer-dot product (matvec_dot.comp) does besides the product: SwiGLU of
// its input with glu_up; RMSNorm of its input with weights norm_w, the input's sum of squares in
// n_parts parts in parts_in; the sum of squares of the rows it writes, one part per workgroup,
// into parts_out.
struct Fused {
    const VkBuf* glu_up = nullptr;
    const VkBuf* norm_w = nullptr;
    const VkBuf* parts_in = nullptr;
    uint32_t n_parts = 0;
    float eps = 0;
    VkBuf* parts_out = nullptr;
};
// Whether matvec_dot.comp's threads hold 64 weights of each row (Q4_K, Q6_K) rather than 32: such
// formats take fewer rows a workgroup and fuse nothing (their registers are the limit).
bool wide_units(GgmlType t) { return t == GgmlType::Q4_K || t == GgmlType::Q6_K; }
// Rows per workgroup (R in matvec.comp: 4; in matvec_dot.comp 8 for the 32-weight formats, 4 for
// Q4_K and Q6_K, whose threads hold 64 weights of each row: measured on an H200, Q4_0 213 against
// 186 t/s at 4, Q4_K_M 164 at 4 against 139 at 8), one token each; QFORGE_GPU_MATVEC_ROWS (1-32)
// sets them all.
int matvec_rows(bool dot, GgmlType t) {
    static const int r = [] {
        const char* e = std::getenv("QFORGE_GPU_MATVEC_ROWS");
        const int v = e ? std::atoi(e) : 0;
        return v >= 1 && v <= 32 ? v : 0;
    }();
    return r ? r : dot && !wide_units(t) ? 8 : 4;
}
// Groups of 64 threads a matvec_dot.comp workgroup, each of R rows; the activations are quantized
// once for all of them. Measured on an H200 (tg128, llama2-7b; before: 203 / 179 / 171 t/s for
// Q4_0 / Q8_0 / Q4_K_M): G = 1, 2, 4, 8 gave Q4_0 149, 174, 227-257, 252-257, Q8_0 138, 198,
// 204-223, 221-222, Q4_K_M 110, 151, 151-169, 166; G = 16 (1024 threads) 122 / 51 / 55.
// QFORGE_GPU_MATVEC_GROUPS (1, 2, 4, 8 or 16) sets it; never more than the device's workgroups
// hold, and 1 where a subgroup could span groups (subgroups of more than 64 or fewer than 4 threads).
uint32_t matvec_groups(const gpu::DeviceInfo& info) {
    static const uint32_t g = [] {
        const char* e = std::getenv("QFORGE_GPU_MATVEC_GROUPS");
        const int v = e ? std::atoi(e) : 8;
        return v == 1 || v == 2 || v == 4 || v == 8 || v == 16 ? static_cast<uint32_t>(v) : 8u;
    }();
    if (info.subgroup_size > 64 || info.subgroup_size < 4) return 1;
    uint32_t n = g;
    while (n > 1 && 64 * n > info.max_workgroup) n /= 2;
    return n;
}
// A switch of the environment that is on unless set to 0 (QFORGE_GPU_PRERECORD, …: for comparisons).
bool switched_on(const char* name) {
    const char* e = std::getenv(name);
    return !e || std::string(e) != "0";
}
constexpr int kMatmulMinTokens = 2;   // batches use the tiled matmul.comp
struct NormPush {
    uint32_t n;
    float eps;
    uint32_t x_row0;
    uint32_t n_parts;  // rmsnorm_parts.comp only
};
struct RopePush {
    uint32_t n_heads, head_dim, n_rot, neox, B;
};
struct AttnPush {  // head_dim is attention.comp's pipeline constant
    uint32_t n_head, n_head_kv, n_past, kv_dim, n_ctx;
    float scale;
    uint32_t chunk, n_split;
};
struct CombinePush {
    uint32_t n_head, head_dim, n_split;
};
// One token's attention is split over positions (flash-decoding) into at most this many parts of
// at least kAttnMinChunk positions (multiples of 64), so that generation runs n_head x parts
// workgroups instead of n_head.
constexpr int kAttnMaxSplit = 8, kAttnMinChunk = 128;
size_t attn_part_floats(int n_head, int head_dim) { return static_cast<size_t>(n_head) * kAttnMaxSplit * static_cast<size_t>(head_dim + 2); }
struct KvStorePush {
    uint32_t kv_dim, n_ctx, n_past, B, head_dim, n_rot, neox;
};
struct CountPush {
    uint32_t n;
};
struct HalfPush {  // to_f16.comp
    uint32_t n4, glu;
};

// Whether batches of weights of type t run on tensor cores (matmul_cm.comp) on this device.
bool tensor_cores(const VkRuntime& rt, GgmlType t) { return rt.info().coopmat && !gpu::matmul_cm_spirv(t).empty(); }
// Whether one token meets weights of type t on integer dot products (matvec_dot.comp, activations
// quantized to 8 bits) on this device.
bool int_dots(const VkRuntime& rt, GgmlType t) { return rt.info().int_dot && !gpu::matvec_dot_spirv(t).empty(); }

uint32_t groups(uint64_t n, uint32_t per) { return static_cast<uint32_t>((n + per - 1) / per); }

// The bytes a weight matrix takes on the device (shaders/weights.glsl): Q8_0, Q4_0, IQ4_NL and
// Q6_K split into every block's codes, then their scales, so that the codes are 16-byte aligned;
// empty for the other formats, which go up as stored.
std::vector<uint8_t> device_layout(GgmlType t, const uint8_t* data, size_t bytes) {
    struct Part {
        size_t at, len;  // within a stored block
    };
    std::vector<Part> parts;
    size_t bb = 0;
    switch (t) {
        case GgmlType::Q8_0: bb = 34, parts = {{2, 32}, {0, 2}}; break;
        case GgmlType::Q4_0:
        case GgmlType::IQ4_NL: bb = 18, parts = {{2, 16}, {0, 2}}; break;
        case GgmlType::Q6_K: bb = 210, parts = {{0, 192}, {192, 16}, {208, 2}}; break;
        default: return {};
    }
    const size_t n = bytes / bb;
    std::vector<uint8_t> out(bytes);
    uint8_t* o = out.data();
    for (const Part& part : parts)
        for (size_t b = 0; b < n; ++b, o += part.len) std::memcpy(o, data + b * bb + part.at, part.len);
    return out;
}

}  // namespace

// A weight matrix on the device: its bytes as stored where a shader reads that format, else f32.
struct GpuMatrix {
    GgmlType type = GgmlType::F32;
    int64_t rows = 0, cols = 0;
    VkBuf buf;
};

struct GpuLayer {
    GpuMatrix wq, wk, wv, wo, gate, up, down;
    VkBuf attn_norm, ffn_norm, bq, bk, bv;
    bool bias = false;
    VkBuf k_cache, v_cache;  // f32: keys [kv_dim][n_ctx] (transposed), values [n_ctx][kv_dim]
};

// The recorders of every shader: each adds one dispatch to the runtime's command buffer.
struct Ops {
    VkRuntime* rt = nullptr;
    VkBuf dummy;  // bound where a shader's optional buffer is absent
    // Pipelines looked up once (the runtime finds them by name; hundreds of dispatches a token).
    std::map<GgmlType, const VkKernel*> matvec_k, matmul_k, matmul_cm_k;
    std::map<std::pair<GgmlType, uint32_t>, const VkKernel*> matvec_dot_k;  // by format and what it fuses
    std::map<int, const VkKernel*> attention_k;                               // by head_dim
    std::map<std::pair<int, uint32_t>, const VkKernel*> attention_batch_k;    // by head_dim and tile
    uint32_t force_tile = 0;  // tests: attention_batch.comp's tile of positions (8, 16 or 32) where it applies
    const VkKernel *rmsnorm_k = nullptr, *rmsnorm_parts_k = nullptr, *rope_k = nullptr, *swiglu_k = nullptr, *to_f16_k = nullptr, *kv_store_k = nullptr,
                   *combine_k = nullptr;
    const VkKernel& kernel(const VkKernel*& slot, const std::string& name, std::span<const uint32_t> spirv, int n_buffers, uint32_t push,
                           std::span<const uint32_t> spec = {}) {
        if (!slot) slot = &rt->kernel(name, spirv, n_buffers, push, spec);
        return *slot;
    }

    // Whether a product of w with B tokens runs matvec_dot.comp and does what Fused lists: Q8_0 and
    // Q4_0 (measured on an H200, Q4_0 tg128 201 -> 213 t/s), not Q4_K and Q6_K, whose threads hold 64
    // weights of a row and lost more to the extra registers than the fused steps saved (Q4_K_M
    // 164 -> 121-130 t/s).
    bool fusable(const GpuMatrix& w, int B) const { return sums_squares(w, B) && !wide_units(w.type); }
    // Whether a product of w with B tokens runs matvec_dot.comp, and so can leave the sum of
    // squares of what it writes in parts (Fused::parts_out; every format, fused or not).
    bool sums_squares(const GpuMatrix& w, int B) const { return B < kMatmulMinTokens && int_dots(*rt, w.type); }

    // Whether a product of w with B tokens runs on tensor cores (matmul_cm.comp), which reads its
    // input as f16 (to_f16 makes it, once for the products that share an input).
    bool half_input(const GpuMatrix& w, int B) const { return B >= kMatmulMinTokens && tensor_cores(*rt, w.type); }

    // y = W x for B tokens (+ bias, + y where accumulate); f (only where fusable(w, B)) adds to it;
    // in16: x as f16 where half_input(w, B). Returns the number of workgroup parts a
    // Fused::parts_out receives.
    uint32_t matvec(const GpuMatrix& w, const VkBuf& in, VkBuf& out, int B, bool accumulate, const VkBuf* bias, const Fused& f = {},
                    const VkBuf* in16 = nullptr) {
        const MatvecPush p{static_cast<uint32_t>(w.rows), static_cast<uint32_t>(w.cols), accumulate ? 1u : 0u, bias ? 1u : 0u,
                           static_cast<uint32_t>(B), f.norm_w ? f.n_parts : 0u, f.eps};
        const VkBuf* bufs[] = {&w.buf, &in, &out, bias ? bias : &dummy, f.glu_up ? f.glu_up : &dummy, f.norm_w ? f.norm_w : &dummy,
                               f.parts_in ? f.parts_in : &dummy, f.parts_out ? f.parts_out : &dummy};
        if (B >= kMatmulMinTokens) {  // prompts: tiles of 128 rows x 128 tokens on tensor cores, else x 64 tokens
            const bool cm = half_input(w, B);
            if (cm) {
                if (!in16) throw std::logic_error("[gpu] a tensor-core product without its f16 input");
                bufs[1] = in16;
            }
            const VkKernel*& k = (cm ? matmul_cm_k : matmul_k)[w.type];
            if (!k)
                k = &rt->kernel(std::string(cm ? "matmul_cm_" : "matmul_") + type_traits(w.type).name,
                                cm ? gpu::matmul_cm_spirv(w.type) : gpu::matmul_spirv(w.type), 4, sizeof(MatvecPush));
            rt->dispatch(*k, std::span(bufs, 4), &p, groups(static_cast<uint64_t>(w.rows), 128), groups(static_cast<uint64_t>(B), cm ? 128 : 64));
            return 0;
        }
        const bool dot = int_dots(*rt, w.type);
        const uint32_t R = static_cast<uint32_t>(matvec_rows(dot, w.type)), G = dot ? matvec_groups(rt->info()) : 1u;
        // matvec_dot.comp's specialization: R, what it fuses (bits: SwiGLU, RMSNorm, sum of squares out), threads.
        // Room for each group's subgroup sums: any size with one group; with more, sizes down to 4
        // (matvec_groups asks for 4 or more; a driver may run smaller subgroups than it reports).
        const uint32_t PG = G == 1 ? 64u : 16u;
        const uint32_t spec[] = {R, (f.glu_up ? 1u : 0u) | (f.norm_w ? 2u : 0u) | (f.parts_out ? 4u : 0u), 64 * G, PG};
        const VkKernel*& k = dot ? matvec_dot_k[{w.type, spec[1]}] : matvec_k[w.type];
        if (!k)
            k = &rt->kernel(std::string(dot ? "matvec_dot_" : "matvec_") + type_traits(w.type).name + "_r" + std::to_string(R) +
                                (dot ? "_f" + std::to_string(spec[1]) + "_g" + std::to_string(G) : ""),
                            dot ? gpu::matvec_dot_spirv(w.type) : gpu::matvec_spirv(w.type), dot ? 8 : 4, sizeof(MatvecPush),
                            std::span<const uint32_t>(spec, dot ? 4 : 1));
        const uint64_t row_groups = groups(static_cast<uint64_t>(w.rows), R * G);
        const uint32_t gx = static_cast<uint32_t>(std::min<uint64_t>(row_groups, 65535)), gz = groups(row_groups, gx);
        rt->dispatch(*k, std::span(bufs, dot ? 8 : 4), &p, gx, static_cast<uint32_t>(B), gz);
        return gx * gz;
    }

    void rmsnorm(const VkBuf& in, const VkBuf& weight, VkBuf& out, int n, float eps, int rows, int row0) {
        const VkKernel& kern = kernel(rmsnorm_k, "rmsnorm", gpu::rmsnorm_spirv(), 3, sizeof(NormPush));
        const NormPush p{static_cast<uint32_t>(n), eps, static_cast<uint32_t>(row0), 0};
        const VkBuf* bufs[] = {&in, &weight, &out};
        rt->dispatch(kern, bufs, &p, static_cast<uint32_t>(rows));
    }
    // The same from the sum of squares in n_parts parts a row ([row][part], rows row0 ..): many
    // workgroups a row (256 elements each) instead of one.
    void rmsnorm_parts(const VkBuf& in, const VkBuf& weight, VkBuf& out, int n, float eps, int rows, int row0, const VkBuf& parts,
                       uint32_t n_parts) {
        const VkKernel& kern = kernel(rmsnorm_parts_k, "rmsnorm_parts", gpu::rmsnorm_parts_spirv(), 4, sizeof(NormPush));
        const NormPush p{static_cast<uint32_t>(n), eps, static_cast<uint32_t>(row0), n_parts};
        const VkBuf* bufs[] = {&in, &weight, &out, &parts};
        rt->dispatch(kern, bufs, &p, groups(static_cast<uint64_t>(n), 256), static_cast<uint32_t>(rows));
    }

    void rope(VkBuf& vec, const VkBuf& cs, int n_heads, int head_dim, int n_rot, bool neox, int B) {
        const VkKernel& kern = kernel(rope_k, "rope", gpu::rope_spirv(), 2, sizeof(RopePush));
        const RopePush p{static_cast<uint32_t>(n_heads), static_cast<uint32_t>(head_dim), static_cast<uint32_t>(n_rot), neox ? 1u : 0u,
                         static_cast<uint32_t>(B)};
        const VkBuf* bufs[] = {&vec, &cs};
        rt->dispatch(kern, bufs, &p, groups(static_cast<uint64_t>(B) * n_heads * (n_rot / 2), 64));
    }

    // The batch's k and v rows into the cache: v as rows, k transposed ([kv_dim][n_ctx]) and
    // rotated with the table cs on the way (n_rot = 0: as they are; cs is then not read).
    void kv_store(const VkBuf& k, const VkBuf& v, VkBuf& kt, VkBuf& vc, const VkBuf& cs, int kv_dim, int head_dim, int n_rot, bool neox,
                  int n_ctx, int n_past, int B) {
        const VkKernel& kern = kernel(kv_store_k, "kv_store", gpu::kv_store_spirv(), 5, sizeof(KvStorePush));
        const KvStorePush p{static_cast<uint32_t>(kv_dim), static_cast<uint32_t>(n_ctx), static_cast<uint32_t>(n_past), static_cast<uint32_t>(B),
                            static_cast<uint32_t>(head_dim), static_cast<uint32_t>(n_rot), neox ? 1u : 0u};
        const VkBuf* bufs[] = {&k, &v, &kt, &vc, &cs};
        const uint32_t g = groups(static_cast<uint64_t>(B) * static_cast<uint64_t>(kv_dim), 64), gx = std::min<uint32_t>(g, 65535);
        rt->dispatch(kern, bufs, &p, gx, groups(g, gx));
    }

    // attention_batch.comp's tile of positions (32, or 16 where shared memory is short) for a batch
    // of B tokens with heads of head_dim; 0 where it does not apply (one token, heads above 128 or
    // not a multiple of 8; QFORGE_GPU_ATTN_BATCH=0).
    uint32_t batch_tile(int head_dim, int B) const {
        static const bool on = switched_on("QFORGE_GPU_ATTN_BATCH");
        const auto& i = rt->info();
        if (!on || B < 2 || head_dim > 128 || head_dim % 8 != 0) return 0;
        if (force_tile) return force_tile;
        for (const uint32_t tp : {32u, 16u}) {
            const uint32_t hd = static_cast<uint32_t>(head_dim), bytes = 4 * (16 * hd + 2 * hd * tp + (i.subgroup_size == tp ? 1 : 16 * tp) + 16 * tp + 3 * 16);
            if (bytes <= i.shared_memory) return tp;
        }
        return 0;
    }

    // part: scratch of attn_part_floats() for one token's split attention.
    void attention(const VkBuf& q, const VkBuf& kc, const VkBuf& vc, VkBuf& out, VkBuf& part, int n_head, int n_head_kv, int head_dim, int n_ctx,
                   int n_past, int B) {
        const uint32_t hd = static_cast<uint32_t>(head_dim);  // attention.comp's HD
        const VkKernel& kern = kernel(attention_k[head_dim], "attention_hd" + std::to_string(hd), gpu::attention_spirv(), 5, sizeof(AttnPush),
                                      std::span<const uint32_t>(&hd, 1));
        AttnPush p{static_cast<uint32_t>(n_head), static_cast<uint32_t>(n_head_kv), static_cast<uint32_t>(n_past),
                   static_cast<uint32_t>(n_head_kv * head_dim), static_cast<uint32_t>(n_ctx), 1.0f / std::sqrt(static_cast<float>(head_dim)), 0, 1};
        const VkBuf* bufs[] = {&q, &kc, &vc, &out, &part};
        const int n_kv = n_past + B;
        if (const uint32_t tp = batch_tile(head_dim, B)) {  // attention_batch.comp: 16 tokens a workgroup
            const uint32_t spec[] = {hd, tp, rt->info().subgroup_size == tp ? 1u : 0u};  // HD, TP, ROWS_IN_SUBGROUPS
            const VkKernel& bk = kernel(attention_batch_k[{head_dim, tp}], "attention_batch_hd" + std::to_string(hd) + "_tp" + std::to_string(tp),
                                        gpu::attention_batch_spirv(), 4, sizeof(AttnPush), spec);
            p.chunk = static_cast<uint32_t>(B);  // its push constant B
            rt->dispatch(bk, std::span(bufs, 4), &p, static_cast<uint32_t>(n_head), groups(static_cast<uint64_t>(B), 16));
            return;
        }
        if (B > 1 || n_kv < 2 * kAttnMinChunk) {
            rt->dispatch(kern, bufs, &p, static_cast<uint32_t>(n_head), static_cast<uint32_t>(B));
            return;
        }
        const int chunk = std::max(kAttnMinChunk, (n_kv + kAttnMaxSplit * 64 - 1) / (kAttnMaxSplit * 64) * 64);
        p.chunk = static_cast<uint32_t>(chunk);
        p.n_split = static_cast<uint32_t>((n_kv + chunk - 1) / chunk);
        rt->dispatch(kern, bufs, &p, static_cast<uint32_t>(n_head), 1, p.n_split);
        rt->barrier();
        const VkKernel& comb = kernel(combine_k, "attn_combine", gpu::attn_combine_spirv(), 2, sizeof(CombinePush));
        const CombinePush cp{static_cast<uint32_t>(n_head), static_cast<uint32_t>(head_dim), p.n_split};
        const VkBuf* cbufs[] = {&part, &out};
        rt->dispatch(comb, cbufs, &cp, static_cast<uint32_t>(n_head), 1);
    }

    // out (f16) = in (f32), n values (a multiple of 4); with up: silu(in) * up (SwiGLU) first.
    void to_f16(const VkBuf& in, VkBuf& out, uint64_t n, const VkBuf* up = nullptr) {
        const VkKernel& kern = kernel(to_f16_k, "to_f16", gpu::to_f16_spirv(), 3, sizeof(HalfPush));
        const HalfPush p{static_cast<uint32_t>(n / 4), up ? 1u : 0u};
        const VkBuf* bufs[] = {&in, &out, up ? up : &dummy};
        const uint32_t g = groups(n / 4, 64), gx = std::min<uint32_t>(g, 65535);
        rt->dispatch(kern, bufs, &p, gx, groups(g, gx));
    }

    void swiglu(VkBuf& gate, const VkBuf& up, uint64_t n) {
        const VkKernel& kern = kernel(swiglu_k, "swiglu", gpu::swiglu_spirv(), 2, sizeof(CountPush));
        const CountPush p{static_cast<uint32_t>(n)};
        const VkBuf* bufs[] = {&gate, &up};
        const uint32_t g = groups(n, 64), gx = std::min<uint32_t>(g, 65535);
        rt->dispatch(kern, bufs, &p, gx, groups(g, gx));
    }
};

struct GpuForward::Impl {
    const Model& m;
    std::unique_ptr<VkRuntime> rt;
    int n_ctx = 0, first = 0;
    int max_b = 0;
    std::vector<GpuLayer> layers;
    GpuMatrix output;
    VkBuf out_norm;
    Ops ops;
    // Activations, sized for max_b tokens.
    VkBuf x_in, x, xn, q, k, v, att, gate, up, logits, logits_host, cs, attn_part;
    VkBuf xh;  // prompts: the products' input as f16 (Ops::half_input)
    VkBuf parts_a, parts_f;  // generation: parts of x's sum of squares (Fused)
    std::vector<float> inv_freq, cos_sin;  // cos_sin: the batch's rotary table, host side

    Impl(const Model& model) : m(model) {}

    VkBuf upload_f32(const std::vector<float>& v) {
        VkBuf b(*rt, v.size() * 4, false);
        b.upload(v.data(), v.size() * 4);
        return b;
    }

    VkBuf vector(const WeightView& w) {
        std::vector<float> v(static_cast<size_t>(w.cols()));
        dequantize(w.type, w.data, v.data(), w.cols());
        return upload_f32(v);
    }

    GpuMatrix matrix(const WeightView& w, const char* what) {
        GpuMatrix g;
        g.rows = w.rows();
        g.cols = w.cols();
        if (g.cols % 32 != 0) throw Error(ExitCode::resource, std::string("[gpu] ") + what + ": rows of " + std::to_string(g.cols) + " are not a multiple of 32");
        const size_t n = static_cast<size_t>(g.rows * g.cols);
        if (!gpu::matvec_spirv(w.type).empty()) {
            g.type = w.type;
            const size_t bytes = w.row_bytes() * static_cast<size_t>(g.rows);
            check_range(bytes, what);
            g.buf = VkBuf(*rt, bytes, false);
            const auto split = device_layout(w.type, w.data, bytes);
            g.buf.upload(split.empty() ? w.data : split.data(), bytes);
        } else {  // bf16 exactly, other formats dequantized: f32 on the device
            g.type = GgmlType::F32;
            check_range(n * 4, what);
            std::vector<float> f(n);
            dequantize(w.type, w.data, f.data(), static_cast<int64_t>(n));
            g.buf = VkBuf(*rt, n * 4, false);
            g.buf.upload(f.data(), n * 4);
        }
        return g;
    }

    void check_range(size_t bytes, const char* what) const {
        if (bytes > rt->max_buffer_range())
            throw Error(ExitCode::resource, std::string("[gpu] ") + what + " needs " + std::to_string(bytes >> 20) + " MiB in one buffer; " +
                                                rt->info().name + " allows " + std::to_string(rt->max_buffer_range() >> 20) + " MiB");
    }

    void ensure_batch(int B) {
        if (B <= max_b) return;
        pre.valid = false;  // its buffers go
        const auto& hp = m.hparams();
        const size_t b = static_cast<size_t>(B), E = static_cast<size_t>(hp.n_embd), Q = static_cast<size_t>(hp.n_head) * hp.head_dim,
                     KV = static_cast<size_t>(hp.n_head_kv) * hp.head_dim, F = static_cast<size_t>(hp.n_ff), V = static_cast<size_t>(hp.n_vocab);
        x_in = VkBuf(*rt, b * E * 4, true);
        x = VkBuf(*rt, b * E * 4, false);
        xn = VkBuf(*rt, b * E * 4, false);
        q = VkBuf(*rt, b * Q * 4, false);
        k = VkBuf(*rt, b * KV * 4, false);
        v = VkBuf(*rt, b * KV * 4, false);
        att = VkBuf(*rt, b * Q * 4, false);
        gate = VkBuf(*rt, b * F * 4, false);
        up = VkBuf(*rt, b * F * 4, false);
        // Only where batches can run on tensor cores (Ops::half_input).
        xh = VkBuf(*rt, rt->info().coopmat && B >= kMatmulMinTokens ? b * std::max({E, Q, F}) * 2 : 16, false);
        logits = VkBuf(*rt, b * V * 4, false);
        logits_host = VkBuf(*rt, b * V * 4, true, true);
        cs = VkBuf(*rt, b * static_cast<size_t>(hp.n_rot) * 4, true);
        if (!attn_part.size()) attn_part = VkBuf(*rt, attn_part_floats(hp.n_head, hp.head_dim) * 4, false);
        if (!parts_a.size()) {  // one part per workgroup of rows (at least one row each) of one token
            parts_a = VkBuf(*rt, E * 4, false);
            parts_f = VkBuf(*rt, E * 4, false);
        }
        max_b = B;
    }

    // A recording of the next generation step, made while the GPU runs this one: the commands
    // depend on the batch size, position and logits wanted, not on the token (x_in and cs are
    // written before each submit). QFORGE_GPU_PRERECORD=0 records every step after the last.
    struct Prerecorded {
        bool valid = false;
        int B = 0, n_past = 0;
        bool all_logits = false;
        uint64_t stamp = 0;  // rt->recordings() just after it
    } pre;

    // Runs the forward pass of B tokens at n_past (x_in and cs written): the recording made
    // ahead where it is this one, else a new one; then, for one token, the next step's recording
    // while the GPU works.
    void run(int B, int n_past, bool all_logits) {
        static const bool prerecord = switched_on("QFORGE_GPU_PRERECORD");
        if (pre.valid && pre.B == B && pre.n_past == n_past && pre.all_logits == all_logits && pre.stamp == rt->recordings()) rt->swap();
        else record(B, n_past, all_logits);
        pre.valid = false;
        rt->submit();
        if (prerecord && !rt->profiling() && B == 1 && n_past + 2 <= n_ctx) {
            rt->swap();
            try {
                record(1, n_past + 1, all_logits);
            } catch (...) {  // back to the submitted buffer, and wait for it, before the error goes on
                rt->swap();
                rt->wait();
                throw;
            }
            pre = {true, 1, n_past + 1, all_logits, rt->recordings()};
            rt->swap();
        }
        rt->wait();
    }

    void record(int B, int n_past, bool all_logits) {
        const auto& hp = m.hparams();
        const size_t KV = static_cast<size_t>(hp.n_head_kv) * hp.head_dim, E = static_cast<size_t>(hp.n_embd);
        rt->begin();
        rt->copy(x_in, 0, x, 0, static_cast<size_t>(B) * E * 4);
        rt->barrier();
        // In generation, where the products run matvec_dot.comp, RMSNorm and SwiGLU happen inside
        // them (Fused): the product that adds to x (attn_output, ffn_down) leaves the parts of x's
        // sum of squares in parts_a/parts_f, the next products normalize as they read x; where
        // those are not fusable (Q4_K, Q6_K), the parts still make RMSNorm a step of many workgroups.
        const auto fusable = [&](const GpuMatrix& w) { return ops.fusable(w, B); };
        // QFORGE_GPU_FUSE_NORM=0 keeps RMSNorm a step of its own, one workgroup a token (for comparisons).
        static const bool fuse_norm = switched_on("QFORGE_GPU_FUSE_NORM");
        // Whether the product of w leaves the parts of its output's sum of squares (every
        // integer-dot product, fused or not).
        const auto leaves_parts = [&](const GpuMatrix& w) { return fuse_norm && ops.sums_squares(w, B); };
        // RMSNorm of x with weights w for the next products: fused into them (the returned Fused)
        // where `fused`, else a step of its own into xn (from the parts where n_parts > 0).
        const auto norm = [&](bool fused, const VkBuf& w, const VkBuf& parts, uint32_t n_parts, int rows, int row0) {
            if (fused) return Fused{nullptr, &w, &parts, n_parts, hp.rms_eps, nullptr};
            if (n_parts) ops.rmsnorm_parts(x, w, xn, hp.n_embd, hp.rms_eps, rows, row0, parts, n_parts);
            else ops.rmsnorm(x, w, xn, hp.n_embd, hp.rms_eps, rows, row0);
            rt->barrier();
            rt->timestamp("rmsnorm");
            return Fused{};
        };
        // The input of the products ws as f16 in xh, where one of them runs on tensor cores (one
        // conversion for the products that share it); null otherwise.
        const auto half_of = [&](const VkBuf& in, size_t cols, int rows, std::initializer_list<const GpuMatrix*> ws,
                                 const VkBuf* glu_up = nullptr) -> const VkBuf* {
            if (std::none_of(ws.begin(), ws.end(), [&](const GpuMatrix* w) { return ops.half_input(*w, rows); })) return nullptr;
            ops.to_f16(in, xh, static_cast<uint64_t>(rows) * cols, glu_up);
            rt->barrier();
            return &xh;
        };
        uint32_t n_parts_a = 0;  // > 0: parts_a holds the parts of this layer's input's sum of squares
        for (auto& L : layers) {
            const bool norm_a = n_parts_a && fusable(L.wq) && fusable(L.wk) && fusable(L.wv);
            const Fused fa = norm(norm_a, L.attn_norm, parts_a, n_parts_a, B, 0);
            const VkBuf* h = half_of(xn, E, B, {&L.wq, &L.wk, &L.wv});
            ops.matvec(L.wq, norm_a ? x : xn, q, B, false, L.bias ? &L.bq : nullptr, fa, h);
            ops.matvec(L.wk, norm_a ? x : xn, k, B, false, L.bias ? &L.bk : nullptr, fa, h);
            ops.matvec(L.wv, norm_a ? x : xn, v, B, false, L.bias ? &L.bv : nullptr, fa, h);
            rt->barrier();
            rt->timestamp("matvec qkv");
            // Queries rotated in place; keys rotated as they go into the cache.
            ops.rope(q, cs, hp.n_head, hp.head_dim, hp.n_rot, hp.rope_neox, B);
            ops.kv_store(k, v, L.k_cache, L.v_cache, cs, static_cast<int>(KV), hp.head_dim, hp.n_rot, hp.rope_neox, n_ctx, n_past, B);
            rt->barrier();
            rt->timestamp("rope, kv store");
            ops.attention(q, L.k_cache, L.v_cache, att, attn_part, hp.n_head, hp.n_head_kv, hp.head_dim, n_ctx, n_past, B);
            rt->barrier();
            rt->timestamp("attention");
            const bool norm_f = fuse_norm && fusable(L.wo) && fusable(L.gate) && fusable(L.up);
            Fused fo;
            if (leaves_parts(L.wo)) fo.parts_out = &parts_f;
            h = half_of(att, static_cast<size_t>(hp.n_head) * hp.head_dim, B, {&L.wo});
            const uint32_t wo_parts = ops.matvec(L.wo, att, x, B, true, nullptr, fo, h), n_parts_f = fo.parts_out ? wo_parts : 0;
            rt->barrier();
            rt->timestamp("matvec o");
            const Fused ff = norm(norm_f, L.ffn_norm, parts_f, n_parts_f, B, 0);
            h = half_of(xn, E, B, {&L.gate, &L.up});
            ops.matvec(L.gate, norm_f ? x : xn, gate, B, false, nullptr, ff, h);
            ops.matvec(L.up, norm_f ? x : xn, up, B, false, nullptr, ff, h);
            rt->barrier();
            rt->timestamp("matvec gate/up");
            Fused fd;
            if (leaves_parts(L.down)) fd.parts_out = &parts_a;
            // SwiGLU: inside ffn_down's product (fused), or as its input goes to f16 (tensor
            // cores), else a step of its own.
            const bool glu_to_half = !fusable(L.down) && ops.half_input(L.down, B);
            if (fusable(L.down)) {
                fd.glu_up = &up;
            } else if (!glu_to_half) {
                ops.swiglu(gate, up, static_cast<uint64_t>(B) * static_cast<uint64_t>(hp.n_ff));
                rt->barrier();
                rt->timestamp("swiglu");
            }
            h = half_of(gate, static_cast<size_t>(hp.n_ff), B, {&L.down}, glu_to_half ? &up : nullptr);
            const uint32_t parts = ops.matvec(L.down, gate, x, B, true, nullptr, fd, h);
            n_parts_a = fd.parts_out ? parts : 0;
            rt->barrier();
            rt->timestamp("matvec down");
        }
        const int first_row = all_logits ? 0 : B - 1, nl = B - first_row;
        const bool norm_out = n_parts_a && fusable(output) && nl == B;
        const Fused fout = norm(norm_out, out_norm, parts_a, n_parts_a, nl, first_row);
        ops.matvec(output, norm_out ? x : xn, logits, nl, false, nullptr, fout, half_of(xn, E, nl, {&output}));
        rt->barrier();
        rt->timestamp("output");
        rt->copy(logits, 0, logits_host, 0, static_cast<size_t>(nl) * static_cast<size_t>(hp.n_vocab) * 4);
        rt->end();
    }
};

std::unique_ptr<GpuForward> GpuForward::create(const Model& model, int n_ctx, int n_gpu_layers, bool allow_cpu_devices) {
    auto g = std::unique_ptr<GpuForward>(new GpuForward());
    g->impl_ = std::make_unique<Impl>(model);
    Impl& I = *g->impl_;
    I.rt = VkRuntime::create();
    if (!allow_cpu_devices && I.rt->info().type == "cpu")
        throw Error(ExitCode::resource, "[gpu] the only Vulkan device is " + I.rt->info().name + ", a software renderer");
    const auto& hp = model.hparams();
    if (hp.head_dim > 256) throw Error(ExitCode::resource, "[gpu] heads of " + std::to_string(hp.head_dim) + " dimensions (at most 256)");
    I.n_ctx = n_ctx;
    I.first = std::max(0, hp.n_layer - std::max(0, n_gpu_layers));
    I.ops.rt = I.rt.get();
    I.ops.dummy = VkBuf(*I.rt, 16, false);
    const size_t KV = static_cast<size_t>(hp.n_head_kv) * hp.head_dim;
    for (int l = I.first; l < hp.n_layer; ++l) {
        const LayerWeights& L = model.layers[static_cast<size_t>(l)];
        GpuLayer G;
        G.wq = I.matrix(L.wq, "attn_q");
        G.wk = I.matrix(L.wk, "attn_k");
        G.wv = I.matrix(L.wv, "attn_v");
        G.wo = I.matrix(L.wo, "attn_output");
        G.gate = I.matrix(L.w_gate, "ffn_gate");
        G.up = I.matrix(L.w_up, "ffn_up");
        G.down = I.matrix(L.w_down, "ffn_down");
        G.attn_norm = I.vector(L.attn_norm);
        G.ffn_norm = I.vector(L.ffn_norm);
        G.bias = L.bq.present();
        if (G.bias) {
            G.bq = I.vector(L.bq);
            G.bk = I.vector(L.bk);
            G.bv = I.vector(L.bv);
        }
        G.k_cache = VkBuf(*I.rt, static_cast<size_t>(n_ctx) * KV * 4, false);
        G.v_cache = VkBuf(*I.rt, static_cast<size_t>(n_ctx) * KV * 4, false);
        I.layers.push_back(std::move(G));
    }
    I.output = I.matrix(model.output, "output");
    I.out_norm = I.vector(model.output_norm);
    I.inv_freq = rope_inv_freq(hp);
    return g;
}

GpuForward::~GpuForward() = default;

int GpuForward::first_layer() const { return impl_->first; }

std::string GpuForward::device_description() const {
    const auto& i = impl_->rt->info();
    return i.name + " (" + i.type + ", Vulkan" + (i.coopmat ? ", cooperative matrix" : "") + (i.int_dot ? ", integer dot product" : "") + ")";
}

void GpuForward::eval(const float* x, int B, int n_past, float* logits, bool all_logits) {
    Impl& I = *impl_;
    const auto& hp = I.m.hparams();
    I.ensure_batch(B);
    I.x_in.upload(x, static_cast<size_t>(B) * static_cast<size_t>(hp.n_embd) * 4);
    // The rotary table of this batch's positions, as the CPU path computes it.
    I.cos_sin.resize(static_cast<size_t>(B) * static_cast<size_t>(hp.n_rot));
    for (int b = 0; b < B; ++b) rope_cos_sin(hp, I.inv_freq, n_past + b, I.cos_sin.data() + static_cast<size_t>(b) * hp.n_rot);
    I.cs.upload(I.cos_sin.data(), I.cos_sin.size() * 4);
    I.run(B, n_past, all_logits);
    const size_t nl = all_logits ? static_cast<size_t>(B) : 1;
    if (logits) I.logits_host.download(logits, nl * static_cast<size_t>(hp.n_vocab) * 4);
}

bool gpu_usable() {
    const auto d = VkRuntime::best_device();
    return d && d->type != "cpu";
}

namespace gpu_ops {

namespace {

// One runtime for every test shader, made on first use.
Ops& test_ops() {
    static std::unique_ptr<VkRuntime> rt;
    static Ops ops;
    if (!rt) {
        rt = VkRuntime::create();
        ops.rt = rt.get();
        ops.dummy = VkBuf(*rt, 16, false);
    }
    return ops;
}

VkBuf buffer_of(std::span<const float> v, size_t min_floats = 1) {
    VkBuf b(*test_ops().rt, std::max(v.size(), min_floats) * 4, false);
    if (!v.empty()) b.upload(v.data(), v.size() * 4);
    return b;
}

std::vector<float> read(VkBuf& b, size_t n) {
    std::vector<float> out(n);
    b.download(out.data(), n * 4);
    return out;
}

}  // namespace

std::string device() {
    const auto& i = test_ops().rt->info();
    return i.name + " (" + i.type + ")";
}

bool coopmat(GgmlType t) { return tensor_cores(*test_ops().rt, t); }

bool int_dot(GgmlType t) { return int_dots(*test_ops().rt, t); }

std::vector<float> matvec(GgmlType t, std::span<const uint8_t> w, int64_t rows, int64_t cols, std::span<const float> x, int B,
                          std::span<const float> bias, std::span<const float> y0, std::span<const float> glu_up) {
    Ops& ops = test_ops();
    GpuMatrix m;
    m.type = t;
    m.rows = rows;
    m.cols = cols;
    m.buf = VkBuf(*ops.rt, w.size(), false);
    const auto split = device_layout(t, w.data(), w.size());
    m.buf.upload(split.empty() ? w.data() : split.data(), w.size());
    VkBuf xb = buffer_of(x), bb = buffer_of(bias), ub = buffer_of(glu_up);
    VkBuf yb = buffer_of(y0, static_cast<size_t>(rows * B));
    // Every matvec_dot.comp format can take SwiGLU (the forward pass fuses it for some only), and
    // every tensor-core product (as its input goes to f16).
    const bool half = ops.half_input(m, B);
    if (!glu_up.empty() && !half && !(B < kMatmulMinTokens && int_dots(*ops.rt, t))) throw Error(ExitCode::usage, "[gpu] no fused SwiGLU for this product");
    VkBuf hb;  // x as f16, where the product runs on tensor cores
    if (half) hb = VkBuf(*ops.rt, x.size() * 2, false);
    ops.rt->begin();
    Fused f;
    if (!glu_up.empty() && !half) f.glu_up = &ub;
    if (half) {
        ops.to_f16(xb, hb, x.size(), glu_up.empty() ? nullptr : &ub);
        ops.rt->barrier();
    }
    ops.matvec(m, xb, yb, B, !y0.empty(), bias.empty() ? nullptr : &bb, f, half ? &hb : nullptr);
    ops.rt->submit_and_wait();
    return read(yb, static_cast<size_t>(rows * B));
}

std::vector<float> rmsnorm(std::span<const float> x, std::span<const float> w, float eps, int n_parts) {
    Ops& ops = test_ops();
    const int n = static_cast<int>(w.size()), rows = static_cast<int>(x.size() / w.size());
    // The parts as a product would leave them: each row's sum of squares over n_parts slices.
    std::vector<float> parts(static_cast<size_t>(std::max(rows * n_parts, 1)), 0.f);
    for (int r = 0; r < rows; ++r)
        for (int i = 0; i < n && n_parts > 0; ++i) {
            const float v = x[static_cast<size_t>(r) * w.size() + static_cast<size_t>(i)];
            parts[static_cast<size_t>(r * n_parts + static_cast<int>(static_cast<int64_t>(i) * n_parts / n))] += v * v;
        }
    VkBuf xb = buffer_of(x), wb = buffer_of(w), yb = buffer_of({}, x.size()), pb = buffer_of(parts);
    ops.rt->begin();
    if (n_parts > 0) ops.rmsnorm_parts(xb, wb, yb, n, eps, rows, 0, pb, static_cast<uint32_t>(n_parts));
    else ops.rmsnorm(xb, wb, yb, n, eps, rows, 0);
    ops.rt->submit_and_wait();
    return read(yb, x.size());
}

std::vector<float> rope(std::span<const float> v, std::span<const float> cos_sin, int n_heads, int head_dim, int n_rot, bool neox, int B) {
    Ops& ops = test_ops();
    VkBuf vb = buffer_of(v), cb = buffer_of(cos_sin);
    ops.rt->begin();
    ops.rope(vb, cb, n_heads, head_dim, n_rot, neox, B);
    ops.rt->submit_and_wait();
    return read(vb, v.size());
}

std::vector<float> attention(std::span<const float> q, std::span<const float> k_cache, std::span<const float> v_cache, int n_head,
                             int n_head_kv, int head_dim, int n_past, int B, int batch_tile) {
    Ops& ops = test_ops();
    ops.force_tile = static_cast<uint32_t>(batch_tile);
    // The caches filled through kv_store, positions 0 .. n_pos - 1 in one batch (n_ctx = n_pos).
    const int kv_dim = n_head_kv * head_dim, n_pos = static_cast<int>(k_cache.size()) / kv_dim;
    VkBuf qb = buffer_of(q), kb = buffer_of(k_cache), vb = buffer_of(v_cache), ob = buffer_of({}, q.size());
    VkBuf kt = buffer_of({}, k_cache.size()), vc = buffer_of({}, v_cache.size());
    VkBuf part = buffer_of({}, attn_part_floats(n_head, head_dim));
    ops.rt->begin();
    ops.kv_store(kb, vb, kt, vc, ops.dummy, kv_dim, head_dim, 0, false, n_pos, 0, n_pos);
    ops.rt->barrier();
    ops.attention(qb, kt, vc, ob, part, n_head, n_head_kv, head_dim, n_pos, n_past, B);
    ops.force_tile = 0;
    ops.rt->submit_and_wait();
    return read(ob, q.size());
}

std::vector<float> rope_stored_keys(std::span<const float> k, std::span<const float> cos_sin, int n_heads, int head_dim, int n_rot, bool neox,
                                    int B) {
    Ops& ops = test_ops();
    const int kv_dim = n_heads * head_dim;
    VkBuf kb = buffer_of(k), cb = buffer_of(cos_sin), vc = buffer_of({}, k.size()), kt = buffer_of({}, k.size());
    ops.rt->begin();
    ops.kv_store(kb, kb, kt, vc, cb, kv_dim, head_dim, n_rot, neox, B, 0, B);
    ops.rt->submit_and_wait();
    const auto t = read(kt, k.size());  // [kv_dim][B]
    std::vector<float> out(k.size());
    for (int b = 0; b < B; ++b)
        for (int c = 0; c < kv_dim; ++c) out[static_cast<size_t>(b * kv_dim + c)] = t[static_cast<size_t>(c * B + b)];
    return out;
}

std::vector<float> swiglu(std::span<const float> gate, std::span<const float> up) {
    Ops& ops = test_ops();
    VkBuf gb = buffer_of(gate), ub = buffer_of(up);
    ops.rt->begin();
    ops.swiglu(gb, ub, gate.size());
    ops.rt->submit_and_wait();
    return read(gb, gate.size());
}

}  // namespace gpu_ops

}  // namespace qforge
