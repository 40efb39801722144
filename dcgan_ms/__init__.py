"""dcgan_ms: the MindSpore DCGAN tutorial ("Generating anime avatars with DCGAN") as a package.

    models.py      Generator, Discriminator
    data/          the image pipeline, the faces download, the procedural sample drawer
    step.py        generator_forward, discriminator_forward, train_step
    loop.py        train_loop: for epoch, for batch, train_step, tell the callbacks
    callbacks.py   what happens around the loop: log, progress, checkpoints, grids, Ctrl-C
    config.py      TrainConfig: every flag of a run, as one record
    session.py     setup (device, data, networks, resume) and train(config): setup, loop, outcome
    train.py       ``python -m dcgan_ms.train``: the command line only
    generate.py    ``python -m dcgan_ms.generate``: images from a checkpoint
    checkpoint.py  saving and loading weights; plots.py: grids, loss plot, GIF
"""
import os

# MindSpore prints many INFO/WARNING lines (deprecations, graph compiler notes); keep errors only
# unless the user asks for more with GLOG_v.
os.environ.setdefault("GLOG_v", "3")

__version__ = "0.1.0"
