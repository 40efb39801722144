"""The strided convolutions (kernel 4, stride 2, padding 1) as differentiable operators (``conv.cc``).

A transposed convolution is a convolution's input gradient, so three kernels cover both layers and all
their gradients: ConvForward, ConvInputGrad and ConvWeightGrad. Each comes in two precisions
(``choice.PRECISIONS``): "fp32", and "bf16", whose matrix products take bfloat16 operands and sum in float32.
"""
from functools import lru_cache

from .library import operator

_SUFFIX = {"fp32": "", "bf16": "Bf16"}  # the kernels' names in conv.cc


def _forward_shape(x, w):
    if len(x) != 4 or x[2] % 2 or x[3] % 2:
        raise ValueError(f"the compiled 4x4/2 convolution needs NCHW input of even height and width, got {x}")
    return [x[0], w[0], x[2] // 2, x[3] // 2]


def _input_grad_shape(dy, w):
    return [dy[0], w[1], dy[2] * 2, dy[3] * 2]


def _weight_grad_shape(x, dy):
    return [dy[1], x[1], 4, 4]


@lru_cache(maxsize=None)
def _kernels(precision):
    suffix = _SUFFIX[precision]
    return (operator(f"ConvForward{suffix}", out_shape=_forward_shape),
            operator(f"ConvInputGrad{suffix}", out_shape=_input_grad_shape),
            operator(f"ConvWeightGrad{suffix}", out_shape=_weight_grad_shape))


@lru_cache(maxsize=None)
def conv2d_operator(precision="fp32"):
    """``conv2d(x, w)``: ``nn.Conv2d(cin, cout, 4, 2, "pad", 1)`` with weight w (cout, cin, 4, 4),
    differentiable in x and w; its matrix products in ``precision``."""
    _, input_grad, weight_grad = _kernels(precision)

    def bprop(x, w, out, dout):
        return input_grad(dout, w), weight_grad(x, dout)

    return operator(f"ConvForward{_SUFFIX[precision]}", out_shape=_forward_shape, bprop=bprop)


@lru_cache(maxsize=None)
def conv2d_transpose_operator(precision="fp32"):
    """``conv2d_transpose(x, w)``: ``nn.Conv2dTranspose(cin, cout, 4, 2, "pad", 1)`` with weight w
    (cin, cout, 4, 4), differentiable in x and w: its gradients are the convolution's forward (for x)
    and the convolution's weight gradient with input and output swapped (for w); matrix products in
    ``precision``."""
    forward, _, weight_grad = _kernels(precision)

    def bprop(x, w, out, dout):
        return forward(dout, w), weight_grad(dout, x)

    return operator(f"ConvInputGrad{_SUFFIX[precision]}", out_shape=_input_grad_shape, bprop=bprop)
