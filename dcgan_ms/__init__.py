"""dcgan_ms: the MindSpore DCGAN tutorial ("Generating anime avatars with DCGAN") as a package.

    models.py, layers.py, step.py   Generator, Discriminator; speed_up (the faster layers); train_step
    data/, noise.py, ema.py         images to batches (TrainingData, faces, sample); each step's noise; G's average
    config.py, session.py           TrainConfig (every flag, defined and checked once); setup(config): a Session
    training.py, loop.py, callbacks/  train(config); the tutorial's loop; logs, checkpoints, pictures, stops
    run_folder.py, files.py         a run's file names, its lock, reading back; writing a file whole
    checkpoint.py, resume.py, distributed.py  weights saved and restored; resume checkpoints; msrun's ranks
    runtime.py, gpu.py, cuda.py, ascend.py, cache.py, kernels/  device and seeds; GPU, Ascend; compiled kernels
    images.py, plots.py, pixels.py, swd.py, scoring.py, report_page.py  images, grids, ImageLook; SWD; the page
    train.py, generate.py, evaluate.py, export.py, doctor.py (same_as_cpu.py), report.py: commands; errors.py
    notebook.py                     tutorial.ipynb's run across cells; docs/design.md follows a run through all
"""
import os

# MindSpore prints many INFO/WARNING lines (deprecations, graph compiler notes); keep errors only
# unless the user asks for more with GLOG_v.
os.environ.setdefault("GLOG_v", "3")

__version__ = "0.1.0"
