"""Training data: the pipeline (dataset.py), the faces download (faces.py), the sample drawer (synth.py)."""
from .dataset import create_dataset, find_images
from .faces import FACES_DIR, FACES_URL, SAMPLE_DIR, prepare_faces

__all__ = ["create_dataset", "find_images", "FACES_DIR", "FACES_URL", "SAMPLE_DIR", "prepare_faces"]
