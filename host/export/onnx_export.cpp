// The ONNX writer (see onnx_export.h). The graph is walked in the order Model's constructor builds the network
// (host/models/model.cpp, dense.cpp, layers.cpp), taking every tensor by its parameter name from the loaded
// model, so a name that is missing or a shape that disagrees fails here instead of exporting another network.
#include "host/export/onnx_export.h"

#include <cstring>
#include <map>
#include <numeric>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/core/check.h"
#include "host/ops/pool.h"

#ifdef RF_HAVE_ONNX
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#endif

namespace rf {

#ifndef RF_HAVE_ONNX

bool onnx_export_available() { return false; }

OnnxExport export_onnx(Model&, const Package&, const OnnxExportOptions& o) {
  RF_FAIL("{}: this reframe was built without libonnx (Debian libonnx-dev; scripts/setup.sh installs it, then "
          "rebuild): cannot export ONNX", o.source);
}

#else

bool onnx_export_available() { return true; }

namespace {

constexpr int kOpset = 17;      // libonnx 1.12's checker knows opsets up to 17; ONNX Runtime 1.23 runs 7..23
constexpr int kIrVersion = 8;   // the IR version of opset 17
static_assert(sizeof(float) == 4, "raw_data is IEEE float32");

using onnx::AttributeProto;
using onnx::TensorProto;

// Builds the graph node by node. Value names are the layers' names ("layer1.0.bn1"); initializers keep the
// parameter names ("layer1.0.conv1.weight").
class GraphWriter {
 public:
  GraphWriter(Model& m, onnx::GraphProto* g, const std::string& what) : cfg_(m.config()), g_(g), what_(what) {
    for (Param* p : m.params()) params_[p->name] = p;
  }

  // A model parameter as an initializer (once); its shape is checked against `dims` where given.
  std::string param(const std::string& name, std::vector<int64_t> expect = {}) {
    auto it = params_.find(name);
    RF_CHECK(it != params_.end(), "{}: export: the model has no tensor '{}'", what_, name);
    const Tensor& t = it->second->value;
    if (!expect.empty())
      RF_CHECK(t.shape().vec() == expect, "{}: export: tensor '{}' has shape {}, expected {}", what_, name,
               t.shape().str(), Shape(expect).str());
    if (done_.insert(name).second) {
      TensorProto* tp = g_->add_initializer();
      tp->set_name(name);
      tp->set_data_type(TensorProto::FLOAT);
      for (int i = 0; i < t.ndim(); ++i) tp->add_dims(t.size(i));
      tp->set_raw_data(std::string(reinterpret_cast<const char*>(t.f32()), size_t(t.numel()) * sizeof(float)));
      initializer_bytes += uint64_t(t.numel()) * sizeof(float);
      if (it->second->kind == ParamKind::seeded) seeded_bytes += uint64_t(t.numel()) * sizeof(float);
    }
    return name;
  }
  const Tensor& value(const std::string& name) { return params_.at(param(name))->value; }

  // A constant int64 / float vector as an initializer named `name`.
  std::string ints(const std::string& name, const std::vector<int64_t>& v) {
    TensorProto* tp = g_->add_initializer();
    tp->set_name(name);
    tp->set_data_type(TensorProto::INT64);
    tp->add_dims(int64_t(v.size()));
    for (int64_t x : v) tp->add_int64_data(x);
    return name;
  }
  std::string floats(const std::string& name, const std::vector<float>& v) {
    TensorProto* tp = g_->add_initializer();
    tp->set_name(name);
    tp->set_data_type(TensorProto::FLOAT);
    tp->add_dims(int64_t(v.size()));
    for (float x : v) tp->add_float_data(x);
    return name;
  }

  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& in,
                        const std::vector<std::string>& out) {
    onnx::NodeProto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(out.front());
    for (const std::string& s : in) n->add_input(s);
    for (const std::string& s : out) n->add_output(s);
    return n;
  }
  static void attr(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
    AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, int64_t v) {
    AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, float v) {
    AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, const std::string& v) {
    AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(AttributeProto::STRING);
    a->set_s(v);
  }

  // Conv2d `prefix` (weight (K, C_in/groups, k, k), bias when has_bias) on x with C_in channels.
  std::string conv(const std::string& x, const std::string& prefix, int C_in, int stride, int pad, bool has_bias,
                   const std::string& weight_name = "") {
    const std::string wn = weight_name.empty() ? prefix + ".weight" : weight_name;
    const Tensor& w = value(wn);
    RF_CHECK(w.ndim() == 4 && w.size(1) >= 1 && C_in % w.size(1) == 0, "{}: export: '{}' has shape {} for {} input "
             "channels", what_, wn, w.shape().str(), C_in);
    const int64_t groups = C_in / w.size(1), k = w.size(2);
    std::vector<std::string> in = {x, wn};
    if (has_bias) in.push_back(param(prefix + ".bias", {w.size(0)}));
    onnx::NodeProto* n = node("Conv", in, {prefix});
    attr(n, "kernel_shape", std::vector<int64_t>{k, k});
    attr(n, "strides", std::vector<int64_t>{stride, stride});
    attr(n, "pads", std::vector<int64_t>{pad, pad, pad, pad});
    attr(n, "group", groups);
    return prefix;
  }
  std::string bn(const std::string& x, const std::string& prefix, int C) {
    onnx::NodeProto* n = node("BatchNormalization",
                              {x, param(prefix + ".weight", {C}), param(prefix + ".bias", {C}),
                               param(prefix + ".running_mean", {C}), param(prefix + ".running_var", {C})},
                              {prefix});
    attr(n, "epsilon", 1e-5f);  // BatchNorm2d's (host/ops/batchnorm.h)
    return prefix;
  }
  std::string relu(const std::string& x, const std::string& name) { return node("Relu", {x}, {name})->output(0); }
  std::string max_pool(const std::string& x, const std::string& name, int stride) {
    onnx::NodeProto* n = node("MaxPool", {x}, {name});  // ONNX pads never win the max, as ours
    attr(n, "kernel_shape", std::vector<int64_t>{3, 3});
    attr(n, "strides", std::vector<int64_t>{stride, stride});
    attr(n, "pads", std::vector<int64_t>{1, 1, 1, 1});
    return name;
  }
  std::string resize(const std::string& x, const std::string& name, float scale) {
    // Bilinear, align_corners = false: half_pixel, as host/ops/upsample.h (source clamped at the edges).
    onnx::NodeProto* n = node("Resize", {x, "", floats(name + ".scales", {1.f, 1.f, scale, scale})}, {name});
    attr(n, "mode", std::string("linear"));
    attr(n, "coordinate_transformation_mode", std::string("half_pixel"));
    return name;
  }

  // The NL module (MODELS.md): [seeded conv + ReLU | max pool | mixed avg pool] -> grouped 1x1 -> shuffle.
  std::string nl(const std::string& x, const std::string& p, int C_in, int C_out, int stride) {
    const int C_nl = cfg_.nl_width(C_in), g = std::gcd(C_in, C_nl);
    param(p + ".seeded.weight", {C_nl, C_in / g, 3, 3});
    std::string a = relu(conv(x, p + ".seeded", C_in, stride, 1, false, p + ".seeded.weight"), p + ".seeded.relu");
    std::string b = max_pool(x, p + ".maxpool", stride);
    // Mixed pool: 5 contiguous channel groups (host/ops/pool.h's split), kernel 3..11, padded zeros counted.
    MixedPoolShape ms;
    ms.C = C_in;
    std::vector<int64_t> split;
    std::vector<std::string> parts, pooled;
    for (int j = 0; j < MixedPoolShape::kGroups; ++j) {
      split.push_back(ms.group_begin(j + 1) - ms.group_begin(j));
      parts.push_back(fmt::format("{}.mixpool.in{}", p, j));
    }
    attr(node("Split", {x, ints(p + ".mixpool.split", split)}, parts), "axis", int64_t(1));
    for (int j = 0; j < MixedPoolShape::kGroups; ++j) {
      const int64_t k = MixedPoolShape::group_kernel(j), pad = k / 2;
      onnx::NodeProto* n = node("AveragePool", {parts[size_t(j)]}, {fmt::format("{}.mixpool.k{}", p, k)});
      attr(n, "kernel_shape", std::vector<int64_t>{k, k});
      attr(n, "strides", std::vector<int64_t>{stride, stride});
      attr(n, "pads", std::vector<int64_t>{pad, pad, pad, pad});
      attr(n, "count_include_pad", int64_t(1));
      pooled.push_back(n->output(0));
    }
    std::string c = p + ".mixpool";
    attr(node("Concat", pooled, {stride == 1 ? c + ".pooled" : c}), "axis", int64_t(1));
    if (stride == 1) node("Sub", {c + ".pooled", x}, {c});  // stride 1: the branch is pooled - x
    attr(node("Concat", {a, b, c}, {p + ".cat"}), "axis", int64_t(1));
    std::string z = conv(p + ".cat", p + ".pw", C_nl + 2 * C_in, 1, 0, true);
    if (!cfg_.shuffle) return z;
    // Shuffle with G groups: output channel j*(C/G) + i takes input channel i*G + j: (N, C/G, G, HW) ->
    // transpose -> (N, G, C/G, HW) -> back to z's own shape (the batch stays symbolic).
    const int64_t G = cfg_.gpw;
    std::string r = node("Reshape", {z, ints(p + ".shuffle.split_shape", {0, C_out / G, G, -1})},
                         {p + ".shuffle.split"})->output(0);
    std::string t = p + ".shuffle.t";
    attr(node("Transpose", {r}, {t}), "perm", std::vector<int64_t>{0, 2, 1, 3});
    std::string s = node("Shape", {z}, {p + ".shuffle.shape"})->output(0);
    return node("Reshape", {t, s}, {p + ".shuffle"})->output(0);
  }

  // A block's 3x3 slot: a learnable conv or an NL module.
  std::string slot(const std::string& x, const std::string& p, int C_in, int C_out, int stride, bool bias) {
    if (cfg_.is_nl()) return nl(x, p, C_in, C_out, stride);
    return conv(x, p, C_in, stride, 1, bias);
  }

  std::string block(const std::string& x, const std::string& name, int C_in, int C_out, int stride) {
    const std::string s = cfg_.is_nl() ? ".nl" : ".conv";
    std::string h = relu(bn(slot(x, name + s + "1", C_in, C_out, stride, false), name + ".bn1", C_out),
                         name + ".relu1");
    h = bn(slot(h, name + s + "2", C_out, C_out, 1, false), name + ".bn2", C_out);
    std::string sc = x;
    if (stride != 1 || C_in != C_out)
      sc = bn(conv(x, name + ".shortcut.conv", C_in, stride, 0, false), name + ".shortcut.bn", C_out);
    return relu(node("Add", {h, sc}, {name + ".add"})->output(0), name);
  }

  bool exported(const std::string& name) const { return done_.count(name) != 0; }
  uint64_t initializer_bytes = 0, seeded_bytes = 0;

 private:
  const ModelConfig& cfg_;
  onnx::GraphProto* g_;
  std::string what_;
  std::map<std::string, Param*> params_;
  std::set<std::string> done_;
};

void set_meta(onnx::ModelProto& mp, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* e = mp.add_metadata_props();
  e->set_key(key);
  e->set_value(value);
}

void value_info(onnx::ValueInfoProto* v, const std::string& name, const std::vector<int64_t>& dims) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(TensorProto::FLOAT);
  auto* sh = tt->mutable_shape();
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i == 0) sh->add_dim()->set_dim_param("N");  // the batch stays dynamic
    else sh->add_dim()->set_dim_value(dims[i]);
  }
}

}  // namespace

OnnxExport export_onnx(Model& m, const Package& p, const OnnxExportOptions& o) {
  const ModelConfig& cfg = m.config();
  const std::string& what = o.source;
  OnnxExport r;
  const int64_t def = cfg.stem == "large" ? 224 : 32;
  r.input_h = o.input_h > 0 ? o.input_h : p.meta.input_h > 0 ? p.meta.input_h : def;
  r.input_w = o.input_w > 0 ? o.input_w : p.meta.input_w > 0 ? p.meta.input_w : def;
  if (cfg.is_dense())
    RF_CHECK(r.input_h % 32 == 0 && r.input_w % 32 == 0, "{}: export: input {}x{}: the {} model needs a height "
             "and width that are multiples of 32 (set --size)", what, r.input_h, r.input_w, cfg.task);
  const Shape out = m.out_shape(Shape{1, 3, r.input_h, r.input_w});

  onnx::ModelProto mp;
  mp.set_ir_version(kIrVersion);
  onnx::OperatorSetIdProto* op = mp.add_opset_import();
  op->set_domain("");
  op->set_version(kOpset);
  mp.set_producer_name("reframe-bench");
  mp.set_producer_version("reframe export");
  mp.set_doc_string(fmt::format("{} ({}), regenerated from its package: seeded weights as initializers",
                                cfg.name(), cfg.str()));
  onnx::GraphProto* g = mp.mutable_graph();
  g->set_name(cfg.name());
  r.input_name = "input";
  r.output_name = cfg.task == "detect" ? "heads" : "logits";
  value_info(g->add_input(), r.input_name, {1, 3, r.input_h, r.input_w});

  GraphWriter w(m, g, what);
  // Stem (and the large stem's max pool), then the stages, as Model's constructor builds them.
  std::string x = cfg.stem == "cifar" ? w.conv(r.input_name, "stem.conv", 3, 1, 1, false)
                                      : w.conv(r.input_name, "stem.conv", 3, 2, 3, false);
  x = w.relu(w.bn(x, "stem.bn", 64), "stem.relu");
  if (cfg.stem != "cifar") x = w.max_pool(x, "stem.maxpool", 2);
  const int widths[4] = {64, 128, 256, 512};
  std::string stage_out[4];
  int C = 64;
  for (int stage = 0; stage < 4; ++stage) {
    for (int b = 0; b < 2; ++b) {
      const int stride = (stage > 0 && b == 0) ? 2 : 1;
      x = w.block(x, fmt::format("layer{}.{}", stage + 1, b), C, widths[stage], stride);
      C = widths[stage];
    }
    stage_out[stage] = x;
  }
  std::string y;
  if (!cfg.is_dense()) {
    std::string pooled = w.node("GlobalAveragePool", {x}, {"head.avgpool"})->output(0);
    std::string flat = w.node("Flatten", {pooled}, {"head.flatten"})->output(0);
    y = w.node("Gemm", {flat, w.param("head.fc.weight", {cfg.classes, 512}), w.param("head.fc.bias", {cfg.classes})},
               {r.output_name})->output(0);
    GraphWriter::attr(g->mutable_node(g->node_size() - 1), "transB", int64_t(1));
  } else {
    // The stride-8 merge of dense.h: l4 = lat4(c4); p3 = lat3(c3) + up(l4); p2 = lat2(c2) + up(p3).
    const int D = cfg.neck;
    std::string l4 = w.conv(stage_out[3], "neck.lat4", 512, 1, 0, true);
    std::string p3 = w.node("Add", {w.conv(stage_out[2], "neck.lat3", 256, 1, 0, true), w.resize(l4, "neck.up4", 2.f)},
                            {"neck.p3"})->output(0);
    std::string p2 = w.node("Add", {w.conv(stage_out[1], "neck.lat2", 128, 1, 0, true), w.resize(p3, "neck.up3", 2.f)},
                            {"neck.p2"})->output(0);
    const bool nl = cfg.head_nl;
    std::string s = w.relu(w.bn(nl ? w.nl(p2, "neck.nl", D, D, 1) : w.conv(p2, "neck.conv", D, 1, 1, false),
                                "neck.bn", D), "neck.relu");
    if (cfg.task == "detect") {
      std::string h = w.relu(nl ? w.nl(s, "head.nl", D, D, 1) : w.conv(s, "head.conv", D, 1, 1, true), "head.relu");
      std::vector<std::string> heads = {w.conv(h, "head.heat", D, 1, 0, true), w.conv(h, "head.size", D, 1, 0, true),
                                        w.conv(h, "head.offset", D, 1, 0, true)};
      y = w.node("Concat", heads, {r.output_name})->output(0);
      GraphWriter::attr(g->mutable_node(g->node_size() - 1), "axis", int64_t(1));
    } else {
      std::string l8 = w.conv(s, "head.cls", D, 1, 0, true);
      y = w.resize(l8, r.output_name, 8.f);
    }
  }
  value_info(g->add_output(), y, out.vec());

  // Every tensor of the model is in the graph: a parameter left out would mean another network was written.
  for (Param* prm : m.params())
    RF_CHECK(w.exported(prm->name), "{}: export: tensor '{}' of the model is in no node of the graph", what,
             prm->name);
  r.nodes = g->node_size();
  r.initializers = g->initializer_size();
  r.initializer_bytes = w.initializer_bytes;
  r.seeded_bytes = w.seeded_bytes;

  // What a user's runtime needs besides the graph.
  nlohmann::json norm = {{"mean", p.meta.mean}, {"std", p.meta.std},
                         {"formula", "x = (pixel / 255 - mean) / std, per channel, RGB"}};
  set_meta(mp, "reframe.config", cfg.str());
  set_meta(mp, "reframe.model", cfg.name());
  set_meta(mp, "reframe.task", cfg.task);
  set_meta(mp, "reframe.input", nlohmann::json({{"name", r.input_name}, {"shape", {"N", 3, r.input_h, r.input_w}},
                                                {"layout", "NCHW"}, {"dtype", "float32"}}).dump());
  set_meta(mp, "reframe.output", nlohmann::json({{"name", r.output_name}, {"shape", out.vec()}}).dump());
  set_meta(mp, "reframe.normalisation", p.meta.mean.empty() ? "not recorded in the package" : norm.dump());
  set_meta(mp, "reframe.classes", nlohmann::json(p.meta.classes).dump());
  set_meta(mp, "reframe.seeds", nlohmann::json({{"rule", p.seed_rule}, {"base", p.base_seed}, {"seeds", p.seeds},
                                                {"generator", p.generator}, {"distribution", p.distribution}}).dump());
  set_meta(mp, "reframe.package", nlohmann::json({{"file", what}, {"bytes", p.file_bytes},
                                                  {"payload_hash", fmt::format("{:016x}", p.payload_hash)},
                                                  {"flags", p.flags}}).dump());
  if (cfg.task == "detect")
    set_meta(mp, "reframe.heads", fmt::format("channels [0,{0}) heatmap logits, {0}..{1} box size (w, h) in stride-8 "
                                              "cells, {2}..{3} centre offset (x, y)", cfg.classes, cfg.classes + 1,
                                              cfg.classes + 2, cfg.classes + 3));

  try {
    onnx::checker::check_model(mp);
    // Shape inference on a copy (strict): the graph's own output shape must be the one the engine gives.
    onnx::ModelProto inferred = mp;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, true));
  } catch (const std::exception& e) {
    RF_FAIL("{}: export: the ONNX graph of {} fails onnx::checker: {}", what, cfg.name(), e.what());
  }
  r.bytes.resize(mp.ByteSizeLong());
  RF_CHECK(mp.SerializeToArray(r.bytes.data(), int(r.bytes.size())), "{}: export: serialising the ONNX model failed",
           what);
  return r;
}

#endif  // RF_HAVE_ONNX

}  // namespace rf
