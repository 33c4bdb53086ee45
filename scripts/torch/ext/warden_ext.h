/* Warden's additions to gotch's libtch, copied in by scripts/torch/setup.
 * Errors are returned as malloc'ed strings (NULL on success); the caller
 * frees them. Nothing here touches gotch's thread-local error slot. */
#ifndef WARDEN_EXT_H
#define WARDEN_EXT_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
/* TORCH_VERSION of the headers this was compiled against, e.g. "1.13.0". */
const char *wext_torch_version(void);
/* Build a TorchScript module in C++: new empty module named `name`
 * (a qualified class name such as "__torch__.warden.MLP"). */
char *wext_module_new(const char *name, void **out);
/* Register a tensor (torch::Tensor*) as parameter or buffer. The tensor is
 * detached and copied; the module owns the copy. */
char *wext_module_register(void *module, const char *name, void *tensor,
                           int is_buffer);
/* Compile TorchScript source (methods using self.<parameter>) into it. */
char *wext_module_define(void *module, const char *src);
/* Every operator (node kind, e.g. "aten::conv2d", "prim::If") in the
 * graphs of every function and method of a loaded module and its
 * submodules, sorted, one per line, in a malloc'ed string (*out). */
char *wext_module_operators(void *module, char **out);
/* The arguments of a loaded module's method (self first), one per line as
 * "name<TAB>type" with the type as TorchScript writes it ("Tensor",
 * "List[str]"), in a malloc'ed string (*out). */
char *wext_module_method_args(void *module, const char *method, char **out);
/* Run forward on a List[str] of n texts without autograd; the output must be
 * a 2-D tensor, returned as float32 rows x cols in a malloc'ed buffer. */
char *wext_module_forward_strings(void *module, const char **texts, int n,
                                  float **data, int64_t *rows, int64_t *cols);
/* Penultimate activations: clone forward's graph, inline its calls, find the
 * last linear layer of its top-level block (aten::linear, or aten::addmm /
 * aten::matmul / aten::mm on a weight read from the module or a constant),
 * make that layer's input the graph's only output and run it on `input` (a
 * torch::Tensor* on the module's device) without autograd. The result is
 * returned as float32 rows (batch) x cols (the rest flattened) in a
 * malloc'ed buffer; *desc (malloc'ed) says which layer it was. */
char *wext_module_features(void *module, void *input, float **data,
                           int64_t *rows, int64_t *cols, char **desc);
#ifdef __cplusplus
}
#endif
#endif
