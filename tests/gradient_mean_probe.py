"""Run by msrun from test_distributed.py: rank r's gradient is r + 1; print what gradient_mean makes of it."""
import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple

from dcgan_ms.distributed import gradient_mean, init_distributed
from dcgan_ms.runtime import check_device, select_device

select_device("CPU")
rank, devices = init_distributed()
check_device("CPU")
weights = ParameterTuple([Parameter(ms.Tensor(np.zeros(3, np.float32)), name="w")])
reduce = gradient_mean(weights, devices)


@ms.jit
def mean_of(gradient):
    return reduce((gradient,))[0]


print("mean gradient", mean_of(ms.Tensor(np.full(3, rank + 1, np.float32))).asnumpy().tolist(), flush=True)
