// Winograd F(4x4, 3x3) convolution (Lavin & Gray, points 0, +-1, +-2 and
// infinity): each 4x4 block of outputs ("tile") from a 6x6 block of inputs,
// 36 transform-domain products instead of 144 multiplies per (output,
// input) channel pair. Used by the Conv op in the training step only
// (RunContext::fast_conv) for group-1, 3x3, stride-1, dilation-1 convs: its
// rounding differs from the direct convolution's (evaluation and export
// keep the direct path).
//
// Bits: every output element is a function of its own image and the
// weights only (each tile is transformed alone; the 36 GEMMs per block of
// tiles are gemmPacked, whose columns do not depend on one another; every
// tile runs the same 16-lane code whatever its place in a block), so the
// result is the same for any thread count, batch composition or position
// of an image in the batch. The weight gradient (one partial per chunk of
// images) is a function of the chunk's images in order.
#pragma once

#include <cstdint>

namespace slim::ops::detail {

/// Input and output channels from which Conv runs a qualifying conv by
/// Winograd when RunContext::fast_conv. The crossover with the direct path
/// on the 2-core AVX-512 host, batch 8, 1 and 2 threads: C = M = 16 at
/// 56x56 is a tie (forward 0.87-0.97x, input gradient 1.03-1.10x), 20 wins
/// (1.25-1.40x), 24 and up win at 56, 28 and 14 (1.1-1.8x).
constexpr int64_t kWinogradMinChannels = 20;

/// Output positions (OH x OW) from which Conv's weight gradient runs by
/// Winograd too: at 7x7 (four 8x8 tiles for 49 outputs) it does not pay
/// (512 channels, batch 8: 1.00x on 1 thread, 0.88x on 2), at 14x14 it does
/// (256 channels: 1.5-1.65x).
constexpr int64_t kWinogradGradMinPositions = 64;

/// Floats of the transformed, packed weights of an m-output, c-input conv
/// (36 packA panels of m x c).
int64_t winogradPackedSize(int64_t m, int64_t c);

/// Transforms the 3x3 weights w (M, C, 3, 3) into U = G g G^T (computed in
/// double, rounded once), packed as 36 packA matrices.
/// flipped = false: the forward conv (M outputs from C inputs), dst has
///   winogradPackedSize(M, C) floats.
/// flipped = true: the input gradient's conv (C outputs from M inputs), the
///   kernel W'[c][m] = W[m][c] rotated by 180 degrees; winogradPackedSize(C, M).
void winogradPackWeights(const float* w, int64_t M, int64_t C, bool flipped, float* dst);

/// winogradPackWeights into a buffer of the calling thread's own, 64-byte
/// aligned (whole cache lines for the packer's streaming stores), valid
/// until the thread's next call. Packed weights live within one conv call,
/// so one buffer per thread serves every Conv node: 4x the largest node's
/// weights, not 4x the sum.
const float* winogradPackedWeights(const float* w, int64_t M, int64_t C, bool flipped);

/// Geometry of one Winograd conv of a batch.
struct WinogradShape {
  int64_t n = 0;                  ///< images
  int64_t c = 0, h = 0, w = 0;    ///< input channels and spatial size
  int64_t m = 0, oh = 0, ow = 0;  ///< output channels and spatial size
  int64_t top = 0, left = 0;      ///< zero padding before the input (may be negative: a crop)
};

/// y (n, m, oh, ow) = the 3x3 correlation of x (n, c, h, w) with the
/// weights packed in u (winogradPackWeights for these m, c):
///   y[i][o][r][s] = sum_{ch, a, b} W[o][ch][a][b] x[i][ch][r + a - top][s + b - left],
/// x zero outside. Splits blocks of tiles over the threads (parallelFor).
void winogradConv(const float* x, const float* u, const WinogradShape& s, float* y);

/// The weight gradient of that conv summed over the s.n images of x and dy
/// (the outputs' gradient, (n, m, oh, ow)), by Winograd: dU_xi (m x c) =
/// sum over the tiles, in order, of (A dy_t A^T)_xi (B^T x_t B)_xi (36
/// GEMMs over the tiles of the images, in blocks of tiles added in order),
/// then dw (m, c, 3, 3) = G^T dU G (double, rounded once); elements under
/// 2^-24 of the largest |dw| are set to zero (transform residue where the
/// direct sum is exactly zero; see winograd.cc: world-size invariance of the
/// fixed-point chunk sums). Overwrites dw. A function of these images in
/// this order only (any thread count); dy scaled by 2^k gives dw scaled by
/// 2^k. Splits over the threads.
/// @param block_tiles  tiles per block (a multiple of 16); 0: by C and M,
///   the transforms of a block about 8 MB (tests set it)
void winogradWeightGrad(const float* x, const float* dy, const WinogradShape& s, float* dw,
                        int64_t block_tiles = 0);

}  // namespace slim::ops::detail
