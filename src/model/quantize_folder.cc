// Model folder conversion to bf16 / f16 / q8_0 / q4_0 (see quantize_folder.h). Mirrors no transformers
// class; the output is an ordinary hub folder (safetensors + index) with the layout in __metadata__.
#include "model/quantize_folder.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "io/weight_registry.h"
#include "model/weight_formats.h"
#include "tensor/dtype.h"

namespace idefics {
namespace {

namespace fs = std::filesystem;

// The small files of a hub folder that travel unchanged (those that exist).
constexpr const char* kCopiedFiles[] = {
    "config.json",           "generation_config.json", "preprocessor_config.json",
    "processor_config.json", "chat_template.json",     "tokenizer.model",
    "tokenizer.json",        "tokenizer_config.json",  "special_tokens_map.json",
    "added_tokens.json"};

// One output tensor: where it comes from and how it is stored.
struct Planned {
  const TensorInfo* src = nullptr;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;                // stored shape ([rows, row_bytes] for block formats)
  WeightFormat format = WeightFormat::kF32;  // row conversion target (block or float)
  bool convert = false;                      // false: the source bytes are copied as they are
  int64_t rows = 0, cols = 0;
  uint64_t nbytes = 0;
};

DType FloatDType(WeightFormat f) {
  return f == WeightFormat::kBF16 ? DType::kBF16 : f == WeightFormat::kF16 ? DType::kF16 : DType::kF32;
}

WeightFormat FormatOfDType(DType d) {
  return d == DType::kBF16 ? WeightFormat::kBF16 : d == DType::kF16 ? WeightFormat::kF16 : WeightFormat::kF32;
}

Planned Plan(const WeightSpec& spec, const TensorInfo& t, WeightFormat requested, WeightFormat side,
             bool tied) {
  Planned p;
  p.src = &t;
  p.rows = t.shape.empty() ? 1 : t.shape[0];
  p.cols = p.rows ? t.numel() / std::max<int64_t>(1, p.rows) : 0;
  const bool embed = spec.name == "model.text_model.embed_tokens.weight";
  WeightFormat target = FormatOfDType(t.dtype);
  if (spec.is_matrix) {
    target = PlanMatrixFormat(spec.name, p.cols, requested, side);
  } else if (embed && !(tied && IsBlockFormat(requested))) {
    // Looked up row by row, never multiplied in blocks: bf16 (f16 when f16 is asked for).
    target = requested == WeightFormat::kF16 ? WeightFormat::kF16 : WeightFormat::kBF16;
  }
  p.format = target;
  if (IsBlockFormat(target)) {
    p.dtype = DType::kU8;
    p.shape = {p.rows, static_cast<int64_t>(WeightRowBytes(target, p.cols))};
    p.convert = true;
  } else {
    p.dtype = FloatDType(target);
    p.shape = t.shape;
    p.convert = p.dtype != t.dtype;
  }
  p.nbytes = 1;
  for (int64_t d : p.shape) p.nbytes *= static_cast<uint64_t>(d);
  p.nbytes *= DTypeSize(p.dtype);
  return p;
}

Status WriteTextFile(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) return IoError(path.string() + ": write failed");
  return Status::Ok();
}

// Writes everything into `stage`; the caller removes it on error.
Status WriteStage(const std::string& in_dir, const fs::path& stage, const QuantizeFolderOptions& o,
                  const TensorStore& store, const std::vector<Planned>& plan, QuantizeFolderResult* result) {
  // Shards in checkpoint order, cut before the limit is passed.
  std::vector<std::vector<const Planned*>> shards(1);
  uint64_t in_shard = 0;
  for (const Planned& p : plan) {
    if (in_shard > 0 && in_shard + p.nbytes > o.shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(&p);
    in_shard += p.nbytes;
  }
  const int n = static_cast<int>(shards.size());
  const std::string fmt_name = WeightFormatName(o.format);
  const uint64_t total_in = [&] {
    uint64_t s = 0;
    for (const Planned& p : plan) s += p.src->nbytes;
    return s;
  }();
  uint64_t done = 0;
  nlohmann::json weight_map = nlohmann::json::object();
  for (int i = 0; i < n; ++i) {
    char name[64];
    if (n == 1) {
      std::snprintf(name, sizeof name, "model.safetensors");
    } else {
      std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", i + 1, n);
    }
    // Tensors whose size is a multiple of 64 bytes first: the data starts on a 64-byte boundary
    // (WriteSafetensors), so each of them starts on a cache line (a matrix's rows stay line-aligned when
    // mapped). The rest follow widest elements first, so every tensor starts at a multiple of its element
    // size and float tensors are used in place too. Stable otherwise (checkpoint order).
    std::vector<const Planned*> order = shards[i];
    std::stable_sort(order.begin(), order.end(), [](const Planned* a, const Planned* b) {
      const bool a64 = a->nbytes % 64 == 0, b64 = b->nbytes % 64 == 0;
      if (a64 != b64) return a64;
      return DTypeSize(a->dtype) > DTypeSize(b->dtype);
    });
    std::map<std::string, std::string> meta = {{"format", "pt"}, {kQuantFormatKey, fmt_name}};
    std::vector<TensorToWrite> tensors;
    for (const Planned* p : order) {
      const TensorInfo& t = *p->src;
      if (IsBlockFormat(p->format))
        meta[QuantizedLayoutKey(t.name)] = QuantizedLayoutValue({p->format, p->rows, p->cols});
      weight_map[t.name] = name;
      TensorToWrite w;
      w.name = t.name;
      w.dtype = p->dtype;
      w.shape = p->shape;
      w.fill = [p, &o, &done, total_in](uint8_t* dst, size_t nbytes) -> Status {
        const TensorInfo& src = *p->src;
        if (nbytes != p->nbytes) return InternalError("tensor '" + src.name + "': size mismatch");
        if (p->convert) {
          ConvertMatrixRows(src, p->rows, p->cols, p->format, dst, o.pool);
        } else {
          std::memcpy(dst, src.data, nbytes);
        }
        ReleaseSourcePages(src);
        done += src.nbytes;
        if (o.progress && total_in) o.progress(static_cast<double>(done) / static_cast<double>(total_in));
        return Status::Ok();
      };
      tensors.push_back(std::move(w));
      result->output_bytes += p->nbytes;
    }
    RETURN_IF_ERROR(WriteSafetensors((stage / name).string(), tensors, meta));
  }
  result->shards = n;
  result->input_bytes = total_in;
  if (n > 1) {
    nlohmann::json index = {{"metadata", {{"total_size", result->output_bytes}, {kQuantFormatKey, fmt_name}}},
                            {"weight_map", weight_map}};
    RETURN_IF_ERROR(WriteTextFile(stage / "model.safetensors.index.json", index.dump(2) + "\n"));
  }
  for (const char* f : kCopiedFiles) {
    std::error_code ec;
    const fs::path src = fs::path(in_dir) / f;
    if (!fs::is_regular_file(src, ec)) continue;
    fs::copy_file(src, stage / f, fs::copy_options::overwrite_existing, ec);
    if (ec) return IoError(src.string() + ": cannot copy to " + (stage / f).string() + ": " + ec.message());
  }
  (void)store;
  return Status::Ok();
}

}  // namespace

StatusOr<QuantizeFolderResult> QuantizeModelFolder(const std::string& in_dir, const std::string& out_dir,
                                                   const QuantizeFolderOptions& o) {
  if (o.format == WeightFormat::kF32)
    return InvalidArgument("quantize: f32 is not a conversion target (expected bf16, f16, q8_0 or q4_0)");
  std::error_code ec;
  if (!fs::is_directory(in_dir, ec))
    return NotFound("model folder '" + in_dir + "' does not exist or is not a folder");
  if (out_dir.empty()) return InvalidArgument("no output folder given");
  fs::path out = fs::path(out_dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();  // "dir/" -> "dir"
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec))
      return InvalidArgument("output '" + out.string() + "' exists and is not a folder");
    if (fs::equivalent(out, in_dir, ec))
      return InvalidArgument("the output folder is the input folder '" + in_dir + "'");
    if (!fs::is_empty(out, ec) && !o.force) {
      return InvalidArgument("output folder '" + out.string() +
                             "' exists and is not empty (use --force to replace it)");
    }
  }

  ASSIGN_OR_RETURN(ModelFolder folder, ModelFolder::Load(in_dir));
  ASSIGN_OR_RETURN(auto store, TensorStore::OpenFolder(in_dir));
  const std::vector<WeightSpec> specs = DeclareIdefics2Weights(folder.config);
  RETURN_IF_ERROR(CheckWeights(*store, specs).WithContext(in_dir));
  if (!StoreQuantFormat(*store).empty()) {
    return InvalidArgument("'" + in_dir + "' is already converted (" + StoreQuantFormat(*store) +
                           "); quantize the original checkpoint instead");
  }
  std::vector<Planned> plan;
  for (const WeightSpec& s : specs)
    plan.push_back(Plan(s, *store->Find(s.name), o.format, o.side_format, folder.config.tie_word_embeddings));

  const fs::path stage =
      out.parent_path() / (out.filename().string() + ".quantize-tmp." + std::to_string(::getpid()));
  fs::remove_all(stage, ec);
  fs::create_directories(stage, ec);
  if (ec) return IoError("cannot create '" + stage.string() + "': " + ec.message());
  QuantizeFolderResult result;
  Status st = WriteStage(in_dir, stage, o, *store, plan, &result);
  if (st.ok()) {
    // Swap into place: an existing (empty, or --force) output is moved aside first and removed after.
    const fs::path old =
        out.parent_path() / (out.filename().string() + ".quantize-old." + std::to_string(::getpid()));
    bool moved_old = false;
    if (fs::exists(out, ec)) {
      fs::rename(out, old, ec);
      if (ec) st = IoError("cannot replace '" + out.string() + "': " + ec.message());
      moved_old = !ec;
    }
    if (st.ok()) {
      fs::rename(stage, out, ec);
      if (ec) {
        st = IoError("cannot rename '" + stage.string() + "' to '" + out.string() + "': " + ec.message());
        if (moved_old) fs::rename(old, out, ec);
      } else if (moved_old) {
        fs::remove_all(old, ec);
      }
    }
  }
  if (!st.ok()) {
    std::error_code ec2;
    fs::remove_all(stage, ec2);
    return st;
  }
  if (o.progress) o.progress(1.0);
  return result;
}

}  // namespace idefics
