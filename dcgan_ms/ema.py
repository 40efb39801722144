"""An exponential moving average of the Generator's weights (``--ema DECAY``, off by default).

GAN training does not settle: G's weights keep circling, and each step's images carry that step's
wobble. Averaging G's weights over the last few hundred steps cancels much of it (Yazici et al. 2019;
Karras et al. use it in Progressive GAN and StyleGAN). After every G update, inside the compiled step:

    average = decay_t * average + (1 - decay_t) * weight,   decay_t = min(decay, (1 + t) / (10 + t))

for every parameter of G, running statistics included (t counts the updates: TensorFlow's warm-up).
The averaged network is a second ``Generator`` whose parameters are named "ema.*"; generator.ckpt
stores them under G's own names (``checkpoint.as_saved``), so it loads as any Generator's.
"""
import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

PREFIX = "ema."  # the name of the attribute that holds the averaged network, and so of its parameters

_average = ops.MultitypeFuncGraph("average")


@_average.register("Tensor", "Tensor", "Tensor")
def _average_one(decay, average, weight):
    return ops.assign(average, decay * average + (1 - decay) * weight)


class WeightAverage(nn.Cell):
    """``averaged``, a network shaped like ``network``, made to follow the moving average of its
    parameters: call the cell (inside the train step) after each update of ``network``."""

    def __init__(self, network, averaged, decay):
        super().__init__()
        for mine, theirs in zip(averaged.get_parameters(), network.get_parameters()):
            mine.set_data(theirs.data.copy())  # the average starts where the network starts
        self.ema, self.decay = averaged, decay  # as the attribute "ema", its parameters are named "ema.*"
        self.weights = ParameterTuple(network.get_parameters())
        self.averages = ParameterTuple(averaged.get_parameters())
        self.updates = Parameter(Tensor(0.0, ms.float32), name=PREFIX + "updates", requires_grad=False)
        self.hyper_map = ops.HyperMap()

    def construct(self):
        t = self.updates + 1
        ops.assign(self.updates, t)
        decay = ops.minimum(self.decay, (1 + t) / (10 + t))
        return self.hyper_map(ops.partial(_average, decay), self.averages, self.weights)
