// Weight loading: checks the checkpoint once, then maps or converts tensor by tensor (streaming, so peak memory
// stays near the converted size). Mirrors Idefics2ForConditionalGeneration.from_pretrained's state dict.
#include "model/weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <new>
#include <optional>

#include "core/check.h"
#include "core/large_alloc.h"
#include "core/thread_pool.h"
#include "io/weight_registry.h"
#include "kernels/cpu_features.h"
#include "model/weight_formats.h"
#include "tensor/dtype.h"

namespace idefics {
namespace {

bool Aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

// A buffer for ModelWeights::owned (core/large_alloc.h).
uint8_t* AllocWeightBuffer(size_t n) {
  return static_cast<uint8_t*>(AllocLarge(n));
}

// Runs fn(begin, end) over element ranges of n, on the pool when there is one.
void Chunked(int64_t n, ThreadPool* pool, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool && n >= (1 << 16)) {
    pool->ParallelFor(n, 1 << 15, fn);
  } else {
    fn(0, n);
  }
}

class Loader {
 public:
  Loader(ModelWeights* w, const ModelLoadOptions& opts, size_t total) : w_(w), opts_(opts), total_(total) {}

  // A float32 vector/table: in place when the file holds aligned F32, else converted.
  const float* Vector(const std::string& name) {
    const TensorInfo& t = Get(name);
    const float* r;
    if (t.dtype == DType::kF32 && Aligned(t.data, 4)) {
      r = reinterpret_cast<const float*>(t.data);
      InPlace(t);
    } else {
      float* dst = reinterpret_cast<float*>(Alloc(t.numel() * 4));
      ConvertChunked(t, dst);
      ReleaseSourcePages(t);
      r = dst;
    }
    Progress(t);
    return r;
  }

  // A [rows, cols] view of any tensor as float32 (e.g. the patch conv kernel [Hv, C, p, p] -> [Hv, C*p*p]).
  WeightMatrix F32Matrix(const std::string& name, int64_t rows, int64_t cols) {
    WeightMatrix m{WeightFormat::kF32, rows, cols, Vector(name)};
    IDEFICS_CHECK(rows * cols == Get(name).numel());
    return m;
  }

  // A view in the tensor's own storage format (F32/BF16/F16), converted only when misaligned. With a block
  // matrix format the table is rounded to bf16 instead (rows are looked up, never multiplied in blocks).
  WeightMatrix StorageMatrix(const std::string& name) {
    const TensorInfo& t = Get(name);
    WeightMatrix m;
    m.rows = t.shape[0];
    m.cols = t.numel() / std::max<int64_t>(1, t.shape[0]);
    if (IsBlockFormat(opts_.matrix_format) && t.dtype != DType::kBF16) {
      m.format = WeightFormat::kBF16;
      uint8_t* dst = Alloc(static_cast<size_t>(m.rows) * m.row_bytes());
      ConvertMatrixRows(t, m.rows, m.cols, m.format, dst, opts_.pool);
      ReleaseSourcePages(t);
      m.data = dst;
      Progress(t);
      return m;
    }
    const size_t align = DTypeSize(t.dtype);
    if (t.dtype == DType::kF32 || t.dtype == DType::kBF16 || t.dtype == DType::kF16) {
      m.format = t.dtype == DType::kF32 ? WeightFormat::kF32
                 : t.dtype == DType::kBF16 ? WeightFormat::kBF16 : WeightFormat::kF16;
      if (Aligned(t.data, align)) {
        m.data = t.data;
        InPlace(t);
        Progress(t);
        return m;
      }
    }
    m.format = WeightFormat::kF32;
    float* dst = reinterpret_cast<float*>(Alloc(t.numel() * 4));
    ConvertChunked(t, dst);
    m.data = dst;
    Progress(t);
    return m;
  }

  // The attention projections, post-attention norm and SwiGLU MLP that perceiver and text layers share
  // (same parameter names under the layer prefix p), in the order the checkpoint declares them.
  template <typename LayerWeights>
  void AttentionAndMlp(const std::string& p, LayerWeights* lw) {
    lw->q = Matrix(p + "self_attn.q_proj.weight");
    lw->k = Matrix(p + "self_attn.k_proj.weight");
    lw->v = Matrix(p + "self_attn.v_proj.weight");
    lw->o = Matrix(p + "self_attn.o_proj.weight");
    lw->post_norm = Vector(p + "post_attention_layernorm.weight");
    lw->gate = Matrix(p + "mlp.gate_proj.weight");
    lw->up = Matrix(p + "mlp.up_proj.weight");
    lw->down = Matrix(p + "mlp.down_proj.weight");
  }

  // A Linear weight: a quantized tensor of the folder is used in place (zero-copy); a float one is stored as
  // PlanMatrixFormat(name, cols, opts.matrix_format) (in place when the file already holds that format).
  WeightMatrix Matrix(const std::string& name) {
    const TensorInfo& t = Get(name);
    StatusOr<std::optional<QuantizedLayout>> q = FindQuantizedLayout(*w_->store, t);
    IDEFICS_CHECK_MSG(q.ok(), name.c_str());  // CheckWeights validated the layout
    if (q->has_value()) {
      const QuantizedLayout& l = **q;
      const void* data = MaybeCopy(name, t);
      Progress(t);
      return WeightMatrix{l.format, l.rows, l.cols, data};
    }
    const int64_t rows = t.shape[0], cols = t.numel() / std::max<int64_t>(1, rows);
    const WeightFormat fmt = PlanMatrixFormat(name, cols, opts_.matrix_format);
    WeightMatrix m{fmt, rows, cols, nullptr};
    const bool is_float = fmt == WeightFormat::kF32 || fmt == WeightFormat::kBF16 || fmt == WeightFormat::kF16;
    const DType same = fmt == WeightFormat::kF32 ? DType::kF32 : fmt == WeightFormat::kBF16 ? DType::kBF16 : DType::kF16;
    if (is_float && t.dtype == same && Aligned(t.data, DTypeSize(same))) {
      m.data = MaybeCopy(name, t);  // zero-copy: the matrix is used straight from the page cache

      Progress(t);
      return m;
    }
    // Streams row blocks from the mapping into the owned buffer, then drops the source pages, so peak memory
    // stays near the converted size (the float32 idefics2-8b is 33.6 GB; q4_0 is ~5 GB).
    uint8_t* dst = Alloc(static_cast<size_t>(rows) * m.row_bytes());
    ConvertMatrixRows(t, rows, cols, fmt, dst, opts_.pool);
    m.data = dst;
    ReleaseSourcePages(t);
    Progress(t);
    return m;
  }

 private:
  const TensorInfo& Get(const std::string& name) {
    const TensorInfo* t = w_->store->Find(name);
    IDEFICS_CHECK_MSG(t != nullptr, name.c_str());  // CheckWeights ran first
    return *t;
  }

  uint8_t* Alloc(size_t n) {
    w_->owned.emplace_back(AllocWeightBuffer(n));
    w_->bytes += n;
    return w_->owned.back().get();
  }

  // The --no-mmap copies, packed one after another (64-byte aligned) into 256 MiB huge-page chunks: a buffer
  // per matrix rounded each of the 226 decoder matrices up to a whole 2 MiB page (≈ +0.2 GB resident). The
  // unused end of a chunk is never touched, so it never becomes resident. Never freed one by one
  // (PackImageWeights, which frees converted buffers, only meets image-side matrices).
  uint8_t* ArenaAlloc(size_t n) {
    constexpr size_t kChunk = size_t{256} << 20;
    const size_t need = (n + 63) / 64 * 64;
    if (need > arena_left_) {
      // At most what is left to load (a small model does not reserve 256 MiB), at least this matrix.
      const size_t left = total_ > done_ ? total_ - done_ : 0;
      const size_t chunk = std::max(need, std::min(kChunk, left));
      w_->owned.emplace_back(AllocWeightBuffer(chunk));
      arena_ = w_->owned.back().get();
      arena_left_ = chunk;
    }
    uint8_t* p = arena_;
    arena_ += need;
    arena_left_ -= need;
    w_->bytes += n;
    return p;
  }

  // With opts.no_mmap, a text-decoder matrix (or lm_head) found usable in place is copied into owned memory
  // (rows split over the pool) and its mapped pages dropped. Returns the pointer to use.
  const void* MaybeCopy(const std::string& name, const TensorInfo& t) {
    // (Matrix() meets embed_tokens only as the tied lm_head; the embedding lookup reads it in place.)
    const bool text = name.rfind("model.text_model.layers.", 0) == 0 || name == "lm_head.weight" ||
                      name == "model.text_model.embed_tokens.weight";
    if (!opts_.no_mmap || !text) {
      InPlace(t);
      return t.data;
    }
    uint8_t* dst = ArenaAlloc(t.nbytes);
    Chunked(static_cast<int64_t>(t.nbytes), opts_.pool,
            [&](int64_t b, int64_t e) { std::memcpy(dst + b, t.data + b, static_cast<size_t>(e - b)); });
    ReleaseSourcePages(t);
    return dst;
  }

  void InPlace(const TensorInfo& t) {
    w_->bytes += t.nbytes;
    w_->mapped_bytes += t.nbytes;
  }

  void ConvertChunked(const TensorInfo& t, float* dst) {
    const size_t es = DTypeSize(t.dtype);
    if (t.dtype == DType::kF32) {  // misaligned F32: plain byte copy
      std::memcpy(dst, t.data, t.nbytes);
      return;
    }
    Chunked(t.numel(), opts_.pool, [&](int64_t b, int64_t e) {
      if (Aligned(t.data, es)) {
        ConvertToF32(t.dtype, t.data + b * es, dst + b, e - b);
      } else {
        uint8_t tmp[8];
        for (int64_t i = b; i < e; ++i) {
          std::memcpy(tmp, t.data + i * es, es);
          ConvertToF32(t.dtype, tmp, dst + i, 1);
        }
      }
    });
  }

  void Progress(const TensorInfo& t) {
    done_ += t.nbytes;
    if (opts_.progress && total_ > 0) opts_.progress(static_cast<double>(done_) / static_cast<double>(total_));
  }

  ModelWeights* w_;
  const ModelLoadOptions& opts_;
  uint8_t* arena_ = nullptr;  // ArenaAlloc: the current chunk's free bytes
  size_t arena_left_ = 0;
  size_t total_;
  size_t done_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<ModelWeights>> LoadModelWeights(const std::string& dir, const Idefics2Config& c,
                                                         const ModelLoadOptions& opts) {
  auto w = std::make_unique<ModelWeights>();
  ASSIGN_OR_RETURN(w->store, TensorStore::OpenFolder(dir));
  const std::vector<WeightSpec> specs = DeclareIdefics2Weights(c);
  RETURN_IF_ERROR(CheckWeights(*w->store, specs).WithContext(dir));
  size_t total = 0;
  for (const WeightSpec& s : specs) total += w->store->Find(s.name)->nbytes;

  Loader L(w.get(), opts, total);
  const VisionConfig& vc = c.vision;
  const std::string vp = "model.vision_model.";
  VisionWeights& v = w->vision;
  v.patch = L.F32Matrix(vp + "embeddings.patch_embedding.weight", vc.hidden_size,
                        vc.num_channels * vc.patch_size * vc.patch_size);
  v.patch_b = L.Vector(vp + "embeddings.patch_embedding.bias");
  v.pos_embed = L.Vector(vp + "embeddings.position_embedding.weight");
  for (int64_t l = 0; l < vc.num_hidden_layers; ++l) {
    const std::string p = vp + "encoder.layers." + std::to_string(l) + ".";
    VisionLayerWeights lw;
    lw.ln1_w = L.Vector(p + "layer_norm1.weight");
    lw.ln1_b = L.Vector(p + "layer_norm1.bias");
    lw.q = L.Matrix(p + "self_attn.q_proj.weight");
    lw.q_b = L.Vector(p + "self_attn.q_proj.bias");
    lw.k = L.Matrix(p + "self_attn.k_proj.weight");
    lw.k_b = L.Vector(p + "self_attn.k_proj.bias");
    lw.v = L.Matrix(p + "self_attn.v_proj.weight");
    lw.v_b = L.Vector(p + "self_attn.v_proj.bias");
    lw.o = L.Matrix(p + "self_attn.out_proj.weight");
    lw.o_b = L.Vector(p + "self_attn.out_proj.bias");
    lw.ln2_w = L.Vector(p + "layer_norm2.weight");
    lw.ln2_b = L.Vector(p + "layer_norm2.bias");
    lw.fc1 = L.Matrix(p + "mlp.fc1.weight");
    lw.fc1_b = L.Vector(p + "mlp.fc1.bias");
    lw.fc2 = L.Matrix(p + "mlp.fc2.weight");
    lw.fc2_b = L.Vector(p + "mlp.fc2.bias");
    v.layers.push_back(lw);
  }
  v.post_ln_w = L.Vector(vp + "post_layernorm.weight");
  v.post_ln_b = L.Vector(vp + "post_layernorm.bias");

  const std::string cp = "model.connector.";
  ConnectorWeights& cw = w->connector;
  cw.proj_gate = L.Matrix(cp + "modality_projection.gate_proj.weight");
  cw.proj_up = L.Matrix(cp + "modality_projection.up_proj.weight");
  cw.proj_down = L.Matrix(cp + "modality_projection.down_proj.weight");
  const std::string pp = cp + "perceiver_resampler.";
  cw.latents = L.Vector(pp + "latents");
  for (int64_t l = 0; l < c.perceiver.resampler_depth; ++l) {
    const std::string p = pp + "layers." + std::to_string(l) + ".";
    PerceiverLayerWeights lw;
    lw.latents_norm = L.Vector(p + "input_latents_norm.weight");
    lw.context_norm = L.Vector(p + "input_context_norm.weight");
    L.AttentionAndMlp(p, &lw);
    cw.layers.push_back(lw);
  }
  cw.norm = L.Vector(pp + "norm.weight");

  const std::string tp = "model.text_model.";
  TextWeights& t = w->text;
  t.embed = L.StorageMatrix(tp + "embed_tokens.weight");
  for (int64_t l = 0; l < c.text.num_hidden_layers; ++l) {
    const std::string p = tp + "layers." + std::to_string(l) + ".";
    TextLayerWeights lw;
    lw.input_norm = L.Vector(p + "input_layernorm.weight");
    L.AttentionAndMlp(p, &lw);
    t.layers.push_back(lw);
  }
  t.norm = L.Vector(tp + "norm.weight");
  // Tied embeddings (not idefics2-8b): the head reuses embed_tokens, converted to the matrix format.
  t.lm_head = c.tie_word_embeddings ? L.Matrix(tp + "embed_tokens.weight") : L.Matrix("lm_head.weight");
  // A lookup table read in place touches a few rows per token: on the (huge-page advised) mapping each row
  // would make its whole 2 MiB folio resident (all 262 MB of idefics2-8b's table for a long prompt), so its
  // range gets small pages and TextModel unmaps the rows after each lookup. Not when the head reads the same
  // bytes (tied embeddings, in place): that GEMV streams the whole table every token.
  const TensorInfo* et = w->store->Find(tp + "embed_tokens.weight");
  const bool head_in_table = c.tie_word_embeddings && t.lm_head.data == et->data;
  t.embed_mapped = t.embed.data == et->data && !head_in_table;
  if (t.embed_mapped) AdviseMappedPages(et->data, et->nbytes, MADV_NOHUGEPAGE);
  if (opts.progress) opts.progress(1.0);
  return w;
}

}  // namespace idefics

namespace idefics {

namespace {
void PackOne(ModelWeights* w, WeightMatrix* m, const MatMulOptions& mm, ThreadPool* pool, size_t* packed) {
  if (m->panels != nullptr || m->data == nullptr || m->format == WeightFormat::kF32 || m->rows == 0) return;
  if (mm.int8_dot && IsBlockFormat(m->format)) return;  // the int8 GEMM runs it, from its rows
  const size_t bytes = Bf16PanelBytes(m->rows, m->cols);
  uint8_t* p = AllocWeightBuffer(bytes);
  w->owned.emplace_back(p);
  PackBf16Panels(*m, p, pool);
  m->panels = p;
  *packed += bytes;
  w->bytes += bytes;
  const size_t original = static_cast<size_t>(m->rows) * m->row_bytes();
  auto it = std::find_if(w->owned.begin(), w->owned.end(),
                         [&](const auto& b) { return b.get() == m->data; });
  if (it != w->owned.end()) {
    it->reset();  // a converted buffer: nothing else reads it
    m->data = nullptr;
  } else {
    ReleaseMappedPages(m->data, original);  // reloaded from the page cache only if a row is ever read again
    w->mapped_bytes -= original;
  }
  w->bytes -= original;
}
}  // namespace

size_t PackImageWeights(ModelWeights* w, const MatMulOptions& mm, ThreadPool* pool) {
  if (!mm.bf16_dot || ActiveIsa() != Isa::kAvx512) return 0;
  size_t packed = 0;
  for (VisionLayerWeights& l : w->vision.layers)
    for (WeightMatrix* m : {&l.q, &l.k, &l.v, &l.o, &l.fc1, &l.fc2}) PackOne(w, m, mm, pool, &packed);
  ConnectorWeights& c = w->connector;
  for (WeightMatrix* m : {&c.proj_gate, &c.proj_up, &c.proj_down}) PackOne(w, m, mm, pool, &packed);
  for (PerceiverLayerWeights& l : c.layers)
    for (WeightMatrix* m : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
      PackOne(w, m, mm, pool, &packed);
  return packed;
}

}  // namespace idefics
