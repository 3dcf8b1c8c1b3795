"""FER2013's constants: classes, image size, splits and per-split class counts.

The bottom of the package: the data layer, the synthetic generator and the models all read
these, and it imports nothing of the package.
"""
from __future__ import annotations

CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
NUM_CLASSES = len(CLASSES)
IMAGE_SIZE = 48
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
#: the three splits of the original file; course ``test.csv`` rows are ``Test``
SPLITS = ("Training", "PublicTest", "PrivateTest")
TEST_SPLIT = "Test"
#: label of an unlabelled row (course ``test.csv``)
UNLABELLED = -1
#: FER2013's per-split class counts (Training; PublicTest; PrivateTest)
FER2013_COUNTS = {
    "Training": (3995, 436, 4097, 7215, 4830, 3171, 4965),
    "PublicTest": (467, 56, 496, 895, 653, 415, 607),
    "PrivateTest": (491, 55, 528, 879, 594, 416, 626),
}
