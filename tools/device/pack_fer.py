"""Workplace glue for the device tool: FER2013 packed losslessly (MED predictor + xz, 54 MB) to fit its 64 MiB transfer; unpacked to a Kaggle CSV there."""
import lzma, sys
import numpy as np

CODES = ("Training", "PublicTest", "PrivateTest")

def _pred(a, b, c):
    mx, mn = np.maximum(a, b), np.minimum(a, b)
    return np.where(c >= mx, mn, np.where(c <= mn, mx, a + b - c))

def pack(src, dst):
    from fer_utils import data
    ds = data.load_path(src)
    im = ds.images[..., 0].astype(np.int16)
    a = np.zeros_like(im); a[:, :, 1:] = im[:, :, :-1]
    b = np.zeros_like(im); b[:, 1:, :] = im[:, :-1, :]
    c = np.zeros_like(im); c[:, 1:, 1:] = im[:, :-1, :-1]
    res = ((im - _pred(a, b, c)) % 256).astype(np.uint8)
    sp = np.array([CODES.index(s) for s in ds.splits], np.uint8)
    raw = len(ds).to_bytes(4, "little") + res.tobytes() + ds.labels.astype(np.uint8).tobytes() + sp.tobytes()
    open(dst, "wb").write(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))
    print(dst, ds.fingerprint())

def unpack(src, dst_csv):
    raw = lzma.decompress(open(src, "rb").read())
    n = int.from_bytes(raw[:4], "little")
    res = np.frombuffer(raw[4:4 + n * 2304], np.uint8).reshape(n, 48, 48).astype(np.int16)
    labels = np.frombuffer(raw[4 + n * 2304:4 + n * 2305], np.uint8)
    splits = np.array([CODES[i] for i in np.frombuffer(raw[4 + n * 2305:], np.uint8)])
    im = np.zeros((n, 48, 48), np.int16)
    for y in range(48):
        for x in range(48):
            a = im[:, y, x - 1] if x else np.zeros(n, np.int16)
            b = im[:, y - 1, x] if y else np.zeros(n, np.int16)
            c = im[:, y - 1, x - 1] if x and y else np.zeros(n, np.int16)
            im[:, y, x] = (res[:, y, x] + _pred(a, b, c)) % 256
    import csv, gzip
    with gzip.open(dst_csv, "wt", newline="", compresslevel=1) as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["emotion", "pixels", "Usage"])
        for i in range(n):
            w.writerow([int(labels[i]), " ".join(map(str, im[i].ravel().tolist())), splits[i]])

if __name__ == "__main__":
    {"pack": pack, "unpack": unpack}[sys.argv[1]](sys.argv[2], sys.argv[3])
