// NaViT-style position ids of the vision tower: fractional patch coordinates bucketized onto the
// num_patches_per_side² position table. Mirrors Idefics2VisionEmbeddings.forward (spec §4.3, "REC" rule).
#pragma once

#include <cstdint>
#include <vector>

namespace idefics {

// Bucket of row/column index i of an n-patch side on an nps-bucket table (0..nps-1):
// #{k : b_k <= x_i} with b_k = fl32(fl64(1/nps) + k·fl64(1/nps)), x_i = fl32(fl32(i) · fl32(1.0f/n)).
int64_t VisionPositionBucket(int64_t i, int64_t n, int64_t nps);

// Row-major [nb_h * nb_w] ids bucket_h(r) * nps + bucket_w(c) for an image with an nb_h × nb_w patch grid.
std::vector<int64_t> VisionPositionIds(int64_t nb_h, int64_t nb_w, int64_t nps);

}  // namespace idefics
