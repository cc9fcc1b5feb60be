// The scale searches shared by ggml's k-quants and its importance-weighted legacy quants.
// Each reproduces ggml's float operations in the same order, so the chosen codes are identical.
#pragma once

#include <cstdint>

namespace qforge {

// Symmetric codes in [-nmax, nmax-1] stored as L + nmax. rmse_type 1 weights by x^2 (or by qw).
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);
// Symmetric 3-bit-style search with coordinate refinement (Q3_K without an imatrix).
float make_q3_quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse);
// Asymmetric codes in [0, nmax] with a min; returns the scale, *the_min = -min.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);
// Positive codes in [0, nmax] for block scales, weighted by quant_weights.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights);
// Index of the value in a sorted table nearest to x (ties to the upper one).
int best_index_int8(int n, const int8_t* val, float x);

}  // namespace qforge
