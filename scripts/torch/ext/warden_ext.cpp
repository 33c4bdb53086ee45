// Warden's additions to gotch's libtch (see warden_ext.h). Compiled as part
// of the libtch package by cgo, next to gotch's torch_api.cpp.
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>
#include <torch/version.h>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <set>
#include <string>
#include "warden_ext.h"

namespace {
char *err_of(const std::exception &e) { return strdup(e.what()); }

using torch::jit::Node;
using torch::jit::Value;

// A weight seen through the transposes a layer applies to it.
Value *untransposed(Value *v) {
  while (v->node()->kind() == c10::aten::t || v->node()->kind() == c10::aten::transpose ||
         v->node()->kind() == c10::aten::permute || v->node()->kind() == c10::aten::numpy_T) {
    v = v->node()->input(0);
  }
  return v;
}

// attr_path names a value read from the module ("fc2.weight" for
// self.fc2.weight), "" when it is not a chain of prim::GetAttr.
std::string attr_path(Value *v) {
  std::string path;
  while (v->node()->kind() == c10::prim::GetAttr) {
    const std::string &name = v->node()->s(c10::attr::name);
    path = path.empty() ? name : name + "." + path;
    v = v->node()->input(0);
  }
  return path;
}

// A parameter (or frozen constant), not an activation: what tells a layer's
// matmul from a product of two activations (attention).
bool is_weight(Value *v) {
  v = untransposed(v);
  return !attr_path(v).empty() || v->node()->kind() == c10::prim::Constant;
}

// linear_input returns the activation a linear layer multiplies (and its
// weight), or nullptr when n is not a linear layer.
Value *linear_input(Node *n, Value **weight) {
  auto k = n->kind();
  if (k == c10::aten::linear && n->inputs().size() >= 2) {
    *weight = n->input(1);
    return n->input(0);
  }
  if (k == c10::aten::addmm && n->inputs().size() >= 3 && is_weight(n->input(2))) {
    *weight = n->input(2);
    return n->input(1);
  }
  if ((k == c10::aten::matmul || k == c10::aten::mm) && n->inputs().size() >= 2 &&
      is_weight(n->input(1))) {
    *weight = n->input(1);
    return n->input(0);
  }
  return nullptr;
}
}  // namespace

extern "C" {

const char *wext_torch_version(void) { return TORCH_VERSION; }

char *wext_module_new(const char *name, void **out) {
  try {
    *out = new torch::jit::Module(c10::QualifiedName(std::string(name)));
    return nullptr;
  } catch (const std::exception &e) {
    *out = nullptr;
    return err_of(e);
  }
}

char *wext_module_register(void *module, const char *name, void *tensor,
                           int is_buffer) {
  try {
    auto *m = static_cast<torch::jit::Module *>(module);
    auto *t = static_cast<torch::Tensor *>(tensor);
    torch::NoGradGuard no_grad;
    auto copy = t->detach().clone();
    if (!is_buffer) copy.set_requires_grad(true);
    m->register_parameter(std::string(name), copy, is_buffer != 0);
    return nullptr;
  } catch (const std::exception &e) {
    return err_of(e);
  }
}

char *wext_module_define(void *module, const char *src) {
  try {
    static_cast<torch::jit::Module *>(module)->define(std::string(src));
    return nullptr;
  } catch (const std::exception &e) {
    return err_of(e);
  }
}

char *wext_module_operators(void *module, char **out) {
  try {
    auto *m = static_cast<torch::jit::Module *>(module);
    std::set<std::string> ops;
    std::function<void(torch::jit::Block *)> walk = [&](torch::jit::Block *b) {
      for (auto *n : b->nodes()) {
        ops.insert(n->kind().toQualString());
        for (auto *sub : n->blocks()) walk(sub);
      }
    };
    // Every function the archive compiled (methods of every submodule and
    // free functions they call), then each module's methods in case one
    // lives outside the module's own compilation unit.
    for (auto *f : m->_ivalue()->compilation_unit()->get_functions()) {
      if (auto *g = torch::jit::tryToGraphFunction(*f)) walk(g->graph()->block());
    }
    for (const auto &sub : m->modules()) {
      for (const auto &method : sub.get_methods()) {
        if (auto *g = torch::jit::tryToGraphFunction(method.function())) walk(g->graph()->block());
      }
    }
    std::string joined;
    for (const auto &op : ops) {
      joined += op;
      joined += '\n';
    }
    *out = strdup(joined.c_str());
    return nullptr;
  } catch (const std::exception &e) {
    *out = nullptr;
    return err_of(e);
  }
}

char *wext_module_method_args(void *module, const char *method, char **out) {
  try {
    auto *m = static_cast<torch::jit::Module *>(module);
    auto meth = m->find_method(std::string(method));
    if (!meth) {
      *out = nullptr;
      return strdup((std::string("the module has no method ") + method).c_str());
    }
    std::string joined;
    for (const auto &a : meth->function().getSchema().arguments()) {
      joined += a.name();
      joined += '\t';
      joined += a.type()->annotation_str();
      joined += '\n';
    }
    *out = strdup(joined.c_str());
    return nullptr;
  } catch (const std::exception &e) {
    *out = nullptr;
    return err_of(e);
  }
}

char *wext_module_forward_strings(void *module, const char **texts, int n,
                                  float **data, int64_t *rows, int64_t *cols) {
  *data = nullptr;
  try {
    auto *m = static_cast<torch::jit::Module *>(module);
    c10::List<std::string> list;
    for (int i = 0; i < n; ++i) list.push_back(std::string(texts[i]));
    torch::NoGradGuard no_grad;
    auto y = m->forward({list});
    if (!y.isTensor()) return strdup("forward did not return a tensor");
    auto t = y.toTensor();
    if (t.dim() != 2) {
      std::string shape;
      for (auto d : t.sizes()) shape += std::to_string(d) + " ";
      return strdup(("forward returned a tensor of shape [ " + shape + "], want [batch, classes]").c_str());
    }
    t = t.to(torch::kCPU, torch::kFloat).contiguous();
    *rows = t.size(0);
    *cols = t.size(1);
    size_t bytes = sizeof(float) * (size_t)t.numel();
    *data = static_cast<float *>(malloc(bytes > 0 ? bytes : 1));
    if (!*data) return strdup("out of memory copying the logits");
    memcpy(*data, t.data_ptr<float>(), bytes);
    return nullptr;
  } catch (const std::exception &e) {
    if (*data) {
      free(*data);
      *data = nullptr;
    }
    return err_of(e);
  }
}

char *wext_module_features(void *module, void *input, float **data,
                           int64_t *rows, int64_t *cols, char **desc) {
  *data = nullptr;
  *desc = nullptr;
  try {
    auto *m = static_cast<torch::jit::Module *>(module);
    auto *x = static_cast<torch::Tensor *>(input);
    auto forward = m->find_method("forward");
    if (!forward) return strdup("the module has no forward method");
    auto graph = forward->graph()->copy();
    torch::jit::Inline(*graph);
    Node *layer = nullptr;
    Value *feature = nullptr, *weight = nullptr;
    for (auto *n : graph->block()->nodes()) {
      Value *w = nullptr;
      if (auto *in = linear_input(n, &w)) {
        layer = n;
        feature = in;
        weight = w;
      }
    }
    if (!layer) {
      return strdup("no linear layer in forward's graph (no aten::linear, nor aten::addmm / aten::matmul "
                    "on a weight, outside control flow): the penultimate activations cannot be read");
    }
    std::string name = attr_path(untransposed(weight));
    std::string what = std::string("input of the last linear layer (") + layer->kind().toQualString() +
                       (name.empty() ? std::string(" on a constant weight") : " on " + name) + ")";
    while (graph->outputs().size() > 0) graph->eraseOutput(graph->outputs().size() - 1);
    graph->registerOutput(feature);
    torch::jit::EliminateDeadCode(graph);
    torch::jit::GraphFunction fn(c10::QualifiedName("__torch__.warden.features"), graph, nullptr);
    torch::NoGradGuard no_grad;
    torch::jit::Stack stack{m->_ivalue(), *x};
    fn.run(stack);
    if (stack.empty() || !stack.back().isTensor()) return strdup("the feature value is not a tensor");
    auto t = stack.back().toTensor();
    if (t.dim() < 1 || t.size(0) != x->size(0)) {
      return strdup(("the " + what + " does not have one row per sample").c_str());
    }
    t = t.reshape({t.size(0), -1}).to(torch::kCPU, torch::kFloat).contiguous();
    *rows = t.size(0);
    *cols = t.size(1);
    size_t bytes = sizeof(float) * (size_t)t.numel();
    *data = static_cast<float *>(malloc(bytes > 0 ? bytes : 1));
    if (!*data) return strdup("out of memory copying the features");
    memcpy(*data, t.data_ptr<float>(), bytes);
    *desc = strdup((what + ", " + std::to_string(*cols) + " features").c_str());
    return nullptr;
  } catch (const std::exception &e) {
    if (*data) {
      free(*data);
      *data = nullptr;
    }
    return err_of(e);
  }
}

}  // extern "C"
