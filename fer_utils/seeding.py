"""The one seeding helper: Python, NumPy and the Keras backend in one call."""
from __future__ import annotations

import os
import random

import numpy as np


def set_seed(seed: int) -> None:
    """Seed every random number generator a run touches."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import keras
    except ImportError:  # data-only use of the package
        return
    keras.utils.set_random_seed(seed)
