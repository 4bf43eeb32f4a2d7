// Position-id bucketization (REC rule): one float32 multiply per coordinate, float32 boundaries.
// Mirrors the torch.arange / torch.bucketize(right=True) code of Idefics2VisionEmbeddings (spec §4.3).
#include "model/position_ids.h"

namespace idefics {

int64_t VisionPositionBucket(int64_t i, int64_t n, int64_t nps) {
  // x_i = fl32(fl32(i) * fl32(1/n)): equals transformers' V2 rule in float32 and V0 (torch.arange on an
  // AVX-512 host) for every n <= 70; V0 on 8-wide hosts differs only at n = 49 and 58 (docs/numerics.md).
  const float x = static_cast<float>(i) * (1.0f / static_cast<float>(n));
  const double step = 1.0 / static_cast<double>(nps);
  int64_t bucket = 0;
  for (int64_t k = 0; k < nps - 1; ++k) {
    const float b = static_cast<float>(step + static_cast<double>(k) * step);  // arange(1/nps, 1, 1/nps)
    if (b <= x) ++bucket;  // bucketize(right=True): count of boundaries <= x
  }
  return bucket;
}

std::vector<int64_t> VisionPositionIds(int64_t nb_h, int64_t nb_w, int64_t nps) {
  std::vector<int64_t> rows(nb_h), cols(nb_w), ids(nb_h * nb_w);
  for (int64_t r = 0; r < nb_h; ++r) rows[r] = VisionPositionBucket(r, nb_h, nps);
  for (int64_t c = 0; c < nb_w; ++c) cols[c] = VisionPositionBucket(c, nb_w, nps);
  for (int64_t r = 0; r < nb_h; ++r)
    for (int64_t c = 0; c < nb_w; ++c) ids[r * nb_w + c] = rows[r] * nps + cols[c];
  return ids;
}

}  // namespace idefics
