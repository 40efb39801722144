"""Compiled CPU kernels for the DCGAN's slow layers on MindSpore's CPU backend, as "aot" custom operators.

One C++ source and one module per operator, as stylegan2-ada keeps its ops: the strided convolutions
(``conv``), LeakyReLU (``leaky_relu``), BatchNorm with its activation (``batch_norm``), the loop's
normal random numbers (``normal``) and the SWD's sorted projections (``sort``); ``common.h`` holds the
thread pool and oneDNN's matrix product, ``library`` compiles and caches the library, ``choice``
decides whether to use it. The layers that call them are in ``dcgan_ms/layers.py``;
``tests/test_models.py`` checks them against MindSpore's own.
"""
from .batch_norm import batch_norm_operator
from .library import Unavailable, build
from .choice import BF16_FLAGS, BUILTIN_SLOWDOWN, CHOICES, PRECISIONS, builtin_cost, matmul_precision, use_compiled
from .conv import conv2d_operator, conv2d_transpose_operator
from .leaky_relu import leaky_relu_operator
from .normal import noise_source, standard_normal
from .sort import sort_rows

__all__ = ["BF16_FLAGS", "BUILTIN_SLOWDOWN", "CHOICES", "PRECISIONS", "Unavailable", "batch_norm_operator", "build",
           "builtin_cost", "conv2d_operator", "conv2d_transpose_operator", "leaky_relu_operator", "matmul_precision",
           "noise_source", "sort_rows", "standard_normal", "use_compiled"]
