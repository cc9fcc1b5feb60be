// IEEE half and bfloat16 conversions, bit-exact with ggml and MLX (round to nearest even).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace qforge {

inline uint32_t f32_bits(float f) { return std::bit_cast<uint32_t>(f); }
inline float f32_from_bits(uint32_t u) { return std::bit_cast<float>(u); }

// f32 -> f16, round to nearest even; overflow gives inf, NaN stays NaN (quiet).
inline uint16_t fp32_to_fp16(float f) {
    const uint32_t x = f32_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {  // inf or NaN
        return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
    }
    if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (ax < 0x38800000u) {  // result is subnormal or zero in f16
        if (ax < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25: rounds to 0
        const uint32_t e = ax >> 23;
        const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - e;  // 14 - (e - 127) + 13 - 1 ... value = m * 2^(e-150)
        // f16 subnormal unit is 2^-24: q = m * 2^(e-150+24) = m >> (126 - e)
        uint32_t q = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1u);
        const uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) ++q;
        return static_cast<uint16_t>(sign | q);
    }
    // normal: rebias exponent and round the mantissa from 23 to 10 bits
    uint32_t r = ax - 0x38000000u;  // exponent bias 127 -> 15
    const uint32_t rem = r & 0x1fffu;
    r >>= 13;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;  // carry may bump the exponent, fine
    return static_cast<uint16_t>(sign | r);
}

inline float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    if (e == 0) {
        if (m == 0) return f32_from_bits(sign);
        // subnormal: value = m * 2^-24
        float v = static_cast<float>(m) * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    if (e == 31) return f32_from_bits(sign | 0x7f800000u | (m << 13));
    return f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

// f32 -> bf16 as ggml does it: round to nearest even, NaN made quiet.
inline uint16_t fp32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64u);
    return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

inline float bf16_to_fp32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

// Round a float through f16 / bf16 and back.
inline float round_fp16(float f) { return fp16_to_fp32(fp32_to_fp16(f)); }
inline float round_bf16(float f) { return bf16_to_fp32(fp32_to_bf16(f)); }

}  // namespace qforge
