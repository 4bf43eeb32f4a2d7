// The decode breakdown of `idefics bench`: the matrix-vector products of the decode steps by shape (from the
// kernels' GemvStats), with their share of the decode time and their streaming rate. Mirrors no reference
// class.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "kernels/matmul.h"

namespace idefics {

// One JSON object per shape, in order of first call, for `tokens` decode steps that took `decode_ms` in all:
// rows, cols, matrices, format, calls_per_token, ms_per_token, GBs, share_of_decode, fraction_of_bandwidth
// (null until SetGemvFractions).
nlohmann::ordered_json GemvBreakdownJson(const GemvStats& stats, int64_t tokens, double decode_ms);
// Every row's fraction_of_bandwidth against the read bandwidth `bw` (GB/s; <= 0: left null).
void SetGemvFractions(nlohmann::ordered_json* rows, double bw);
// "4096->28672 q4_0 x2": K, output rows and the number of matrices sharing the activations.
std::string GemvShapeLabel(const nlohmann::ordered_json& row);

}  // namespace idefics
