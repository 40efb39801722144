"""BatchNorm in training mode with its activation, one kernel each way (``batch_norm.cc``)."""
from functools import lru_cache

from mindspore import ops

from .library import operator


def _forward_shapes(x, gamma, *_):
    return [x, [2, *gamma], gamma, gamma]


def _backward_shapes(x, gamma, *_):
    return [x, gamma, gamma]


def _four_like_first(dtype, *_):
    return [dtype] * 4


def _three_like_first(dtype, *_):
    return [dtype] * 3


@lru_cache(maxsize=None)
def batch_norm_operator():
    """``batch_norm(x, gamma, beta, moving_mean, moving_var, params) -> (y, batch_stats, new_moving_mean,
    new_moving_var)``: BatchNorm in training mode on NCHW x, then ReLU or LeakyReLU, with params float32
    [eps, momentum, alpha, 1 - alpha] (alpha 0: ReLU; momentum as ``ops.BatchNorm``'s, the weight of the
    batch); bit for bit MindSpore's BatchNorm and activation (MindSpore 2.10 on x86_64). Differentiable
    in x, gamma and beta."""
    backward = operator("BatchNormBackward", out_shape=_backward_shapes, out_dtype=_three_like_first)

    def bprop(x, gamma, beta, moving_mean, moving_var, params, out, dout):
        dx, dgamma, dbeta = backward(x, gamma, beta, out[1], dout[0], params)  # out[1]: the batch's mean, variance
        return dx, dgamma, dbeta, ops.zeros_like(moving_mean), ops.zeros_like(moving_var), ops.zeros_like(params)

    return operator("BatchNormForward", out_shape=_forward_shapes, out_dtype=_four_like_first, bprop=bprop)
