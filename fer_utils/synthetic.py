"""The embedded default data set: synthetic 48x48 cartoon faces in FER2013's format.

The class is carried by facial geometry only (brow slope and height, eye
opening, mouth curve, opening, width and asymmetry, nose wrinkle), each drawn
around a per-class prototype with an expression *intensity* that blends it
towards the neutral face, so weak expressions overlap as in real data. The
nuisance variation is position, scale, rotation, face shape, lighting,
contrast, noise, blur and partial occlusion. Class proportions and the three
splits follow FER2013. Deterministic for a seed.
"""
from __future__ import annotations

import numpy as np

from .constants import FER2013_COUNTS, IMAGE_SIZE, NUM_CLASSES, SPLITS

#: per-class geometry prototypes:
#: brow_slope (+ = inner ends down, the angry "V"), brow_height, eye_open,
#: mouth_curve (+ = smile), mouth_open, mouth_width, mouth_asym, wrinkle
_PROTOTYPES = np.array([
    # slope  height  eye   curve  open  width  asym  wrinkle
    [0.55, -0.06, 0.55, -0.15, 0.00, 0.30, 0.00, 0.3],   # 0 Angry
    [0.30, -0.04, 0.55, -0.10, 0.05, 0.30, 0.55, 1.0],   # 1 Disgust
    [-0.45, 0.10, 1.45, -0.05, 0.22, 0.40, 0.00, 0.0],   # 2 Fear
    [0.00, 0.02, 0.75, 0.55, 0.12, 0.48, 0.00, 0.0],     # 3 Happy
    [-0.50, 0.00, 0.70, -0.45, 0.00, 0.33, 0.00, 0.0],   # 4 Sad
    [-0.05, 0.16, 1.55, 0.00, 0.45, 0.22, 0.00, 0.0],    # 5 Surprise
    [0.00, 0.00, 1.00, 0.00, 0.00, 0.35, 0.00, 0.0],     # 6 Neutral
], dtype=np.float64)
_NEUTRAL = _PROTOTYPES[6]
#: per-feature spread of the individual variation around a prototype
_SPREAD = 0.7 * np.array([0.22, 0.05, 0.25, 0.18, 0.08, 0.07, 0.20, 0.3])


def _sigmoid_mask(d: np.ndarray, sharp: float) -> np.ndarray:
    """Soft inside-mask of a signed distance (negative inside)."""
    return 1.0 / (1.0 + np.exp(np.clip(d * sharp, -30, 30)))


def _segment_distance(x, y, x0, y0, x1, y1):
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy + 1e-9), 0, 1)
    return np.hypot(x - (x0 + t * dx), y - (y0 + t * dy))


def _draw_face(p: np.ndarray, rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    slope, brow_h, eye_open, curve, mouth_open, mouth_w, asym, wrinkle = p
    # nuisance geometry: rotation, scale, translation applied to the sampling grid
    ang = rng.normal(0, 0.18)
    scale = rng.uniform(0.85, 1.15)
    tx, ty = rng.normal(0, 0.07, size=2)
    lin = (np.arange(size) + 0.5) / size * 2 - 1
    gx, gy = np.meshgrid(lin, lin)
    ca, sa = np.cos(ang), np.sin(ang)
    x = ((gx - tx) * ca + (gy - ty) * sa) / scale
    y = (-(gx - tx) * sa + (gy - ty) * ca) / scale
    flip = rng.random() < 0.5  # asymmetric expressions appear on either side
    if flip:
        x = -x

    face_w, face_h = rng.uniform(0.62, 0.78), rng.uniform(0.80, 0.95)
    sharp = size / 2.0
    bg = rng.uniform(0.05, 0.6) + rng.normal(0, 0.15) * gx
    skin = rng.uniform(0.55, 0.9)
    img = bg.copy()
    face = _sigmoid_mask(np.hypot(x / face_w, y / face_h) - 1, sharp * 0.8)
    img = img * (1 - face) + skin * face
    dark = skin * rng.uniform(0.15, 0.4)

    def ink(mask, level=dark):
        nonlocal img
        img = img * (1 - mask) + level * mask

    # eyes: ellipses whose height is the eye opening
    eye_y, eye_dx, eye_w = -0.18 + rng.normal(0, 0.02), 0.30 + rng.normal(0, 0.02), 0.13
    eye_h = 0.09 * max(eye_open, 0.12)
    for side in (-1, 1):
        ink(_sigmoid_mask(np.hypot((x - side * eye_dx) / eye_w, (y - eye_y) / eye_h) - 1, sharp * 0.15))
    # brows: segments above the eyes; slope tilts the inner end down (+) or up (-)
    by = eye_y - 0.17 - brow_h
    for side in (-1, 1):
        xi, xo = side * 0.12, side * 0.46
        yi, yo = by + 0.16 * slope, by - 0.16 * slope
        ink(_sigmoid_mask(_segment_distance(x, y, xi, yi, xo, yo) - 0.035, sharp))
    # nose, and the disgust wrinkle beside it
    ink(_sigmoid_mask(_segment_distance(x, y, 0.0, -0.05, 0.03, 0.18) - 0.018, sharp), skin * 0.6)
    if wrinkle > 0.25:
        for side in (-1, 1):
            ink(_sigmoid_mask(_segment_distance(x, y, side * 0.08, 0.02, side * 0.15, 0.14) - 0.012 * min(wrinkle, 1.5),
                              sharp), skin * (1 - 0.3 * min(wrinkle, 1.0)))
    # mouth: a curve y = m0 - curve*(1 - (x/w)^2) tilted by asym, open as a filled lens
    m0 = 0.45 + rng.normal(0, 0.02)
    w = max(mouth_w, 0.12)
    u = np.clip(x / w, -1.2, 1.2)
    inside = np.abs(x) < w
    upper = m0 + curve * 0.30 * (1 - u ** 2) - asym * 0.05 * (u + 1)  # asym lifts one corner
    lower = upper + mouth_open * 0.45 * np.clip(1 - u ** 2, 0, None)
    dist = np.where(inside, np.maximum(upper - y, y - lower), 1.0)
    ink(_sigmoid_mask(dist - 0.022, sharp))
    # occlusion: a hand- or hair-like blob covering part of the face
    if rng.random() < 0.2:
        cx, cy = rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8)
        r = rng.uniform(0.15, 0.35)
        ink(_sigmoid_mask(np.hypot(x - cx, (y - cy) * rng.uniform(0.6, 1.4)) - r, sharp), rng.uniform(0.0, 1.0))
    # lighting: gradient and contrast; then blur and sensor noise
    light = 1 + rng.normal(0, 0.25) * gx + rng.normal(0, 0.2) * gy
    img = img * light
    img = (img - img.mean()) * rng.uniform(0.6, 1.3) + img.mean()
    img = _blur(img, rng.choice([0.0, 0.6, 1.0, 1.5], p=[0.4, 0.35, 0.2, 0.05]))
    img = img + rng.normal(0, rng.uniform(0.01, 0.05), img.shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img
    r = int(np.ceil(2 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(img, r, mode="edge")
    rows = sum(k[i] * pad[:, i:i + img.shape[1]] for i in range(2 * r + 1))
    return sum(k[i] * rows[i:i + img.shape[0], :] for i in range(2 * r + 1))


def _split_sizes(n: int) -> dict[str, np.ndarray]:
    """Per-split, per-class counts with FER2013's proportions, summing to n."""
    table = np.array([FER2013_COUNTS[s] for s in SPLITS], dtype=np.float64)
    exact = table / table.sum() * n
    counts = np.floor(exact).astype(int)
    order = np.argsort((exact - counts).ravel())[::-1]
    for k in order[: n - counts.sum()]:
        counts.flat[k] += 1
    return {s: counts[i] for i, s in enumerate(SPLITS)}


def generate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(images uint8 (n,48,48,1), labels int64 (n,), splits str (n,))``."""
    if n < 3 * NUM_CLASSES:
        raise ValueError(f"synthetic data needs n >= {3 * NUM_CLASSES}, got {n}")
    rng = np.random.default_rng(seed)
    labels, splits = [], []
    for split, per_class in _split_sizes(n).items():
        for c, k in enumerate(per_class):
            labels += [c] * int(k)
            splits += [split] * int(k)
    labels = np.asarray(labels, dtype=np.int64)
    splits = np.asarray(splits).astype(str)
    order = np.concatenate([rng.permutation(np.flatnonzero(splits == s)) for s in SPLITS])
    labels, splits = labels[order], splits[order]
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.uint8)
    for i, c in enumerate(labels):
        intensity = rng.beta(3.0, 1.2)  # many clear expressions, some weak ones
        proto = _NEUTRAL + intensity * (_PROTOTYPES[c] - _NEUTRAL)
        params = proto + rng.normal(0, 1, proto.shape) * _SPREAD
        images[i, :, :, 0] = _draw_face(params, rng)
    return images, labels, splits
