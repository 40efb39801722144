"""Training data: the pipeline (dataset.py), its owner (training_data.py), the faces download (faces.py),
the sample drawer (synth.py)."""
from .dataset import find_images
from .faces import FACES_DIR, FACES_URL, SAMPLE_DIR, prepare_faces
from .training_data import DataError, TrainingData, create_dataset

__all__ = ["DataError", "FACES_DIR", "FACES_URL", "SAMPLE_DIR", "TrainingData", "create_dataset", "find_images",
           "prepare_faces"]
