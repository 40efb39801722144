"""The strided convolutions (kernel 4, stride 2, padding 1) as differentiable operators (``conv.cc``).

A transposed convolution is a convolution's input gradient, so three kernels cover both layers and all
their gradients: ConvForward, ConvInputGrad and ConvWeightGrad.
"""
from functools import lru_cache

from .library import operator


def _forward_shape(x, w):
    if len(x) != 4 or x[2] % 2 or x[3] % 2:
        raise ValueError(f"the compiled 4x4/2 convolution needs NCHW input of even height and width, got {x}")
    return [x[0], w[0], x[2] // 2, x[3] // 2]


def _input_grad_shape(dy, w):
    return [dy[0], w[1], dy[2] * 2, dy[3] * 2]


def _weight_grad_shape(x, dy):
    return [dy[1], x[1], 4, 4]


@lru_cache(maxsize=None)
def _kernels():
    return (operator("ConvForward", out_shape=_forward_shape), operator("ConvInputGrad", out_shape=_input_grad_shape),
            operator("ConvWeightGrad", out_shape=_weight_grad_shape))


@lru_cache(maxsize=None)
def conv2d_operator():
    """``conv2d(x, w)``: ``nn.Conv2d(cin, cout, 4, 2, "pad", 1)`` with weight w (cout, cin, 4, 4),
    differentiable in x and w."""
    _, input_grad, weight_grad = _kernels()

    def bprop(x, w, out, dout):
        return input_grad(dout, w), weight_grad(x, dout)

    return operator("ConvForward", out_shape=_forward_shape, bprop=bprop)


@lru_cache(maxsize=None)
def conv2d_transpose_operator():
    """``conv2d_transpose(x, w)``: ``nn.Conv2dTranspose(cin, cout, 4, 2, "pad", 1)`` with weight w
    (cin, cout, 4, 4), differentiable in x and w: its gradients are the convolution's forward (for x)
    and the convolution's weight gradient with input and output swapped (for w)."""
    forward, _, weight_grad = _kernels()

    def bprop(x, w, out, dout):
        return forward(dout, w), weight_grad(dout, x)

    return operator("ConvInputGrad", out_shape=_input_grad_shape, bprop=bprop)
