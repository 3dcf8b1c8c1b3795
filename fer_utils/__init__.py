"""Helpers for the FER2013 model-compression study: data, models, training, compression, plots."""
__version__ = "0.1.0"
