"""dcgan_ms: the MindSpore DCGAN tutorial ("Generating anime avatars with DCGAN") as a package.

    models.py, layers.py   Generator, Discriminator (the tutorial's); speed_up, the faster layers' rewrite
    data/                  the image pipeline and TrainingData, the faces download, the sample drawer
    step.py, loop.py       train_step (generator_forward, discriminator_forward); train_loop
    noise.py, callbacks/   each step's noise; what happens around the loop (logs, checkpoints, pictures)
    config.py              TrainConfig: every flag of a run, defined once
    session.py, training.py  setup(config); train(config): setup, loop, outcome
    train.py, generate.py, evaluate.py, export.py   the command lines
    gpu.py, cuda.py        --device_target GPU: pip's CUDA 11 readied before MindSpore, each stage one line
    notebook.py            tutorial.ipynb's run across cells: Stop, run again, one-line errors
docs/design.md follows a run through the modules.
"""
import os

# MindSpore prints many INFO/WARNING lines (deprecations, graph compiler notes); keep errors only
# unless the user asks for more with GLOG_v.
os.environ.setdefault("GLOG_v", "3")

__version__ = "0.1.0"
