#!/usr/bin/python3
"""Makes the bundled Fashion-MNIST subset from Debian's dataset-fashion-mnist package.

Takes the FIRST 100 images of each class from the training set and the first 50 of each class from
the test set (file order, no randomness), and writes each as an 8-bit grayscale 28x28 PNG into
train/<class>/ and test/<class>/. Run: /usr/bin/python3 make_subset.py [SOURCE_DIR]
"""
import gzip, os, sys
from PIL import Image

SOURCE = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
CLASSES = ["tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
HERE = os.path.dirname(os.path.abspath(__file__))

def read(prefix):
    with gzip.open(os.path.join(SOURCE, prefix + "-images-idx3-ubyte.gz")) as f:
        images = f.read()[16:]
    with gzip.open(os.path.join(SOURCE, prefix + "-labels-idx1-ubyte.gz")) as f:
        labels = f.read()[8:]
    return images, labels

for prefix, split, per_class in (("train", "train", 100), ("t10k", "test", 50)):
    images, labels = read(prefix)
    taken = [0] * 10
    for i, label in enumerate(labels):
        if taken[label] >= per_class:
            continue
        folder = os.path.join(HERE, split, CLASSES[label])
        os.makedirs(folder, exist_ok=True)
        img = Image.frombytes("L", (28, 28), images[i * 784:(i + 1) * 784])
        img.save(os.path.join(folder, f"{prefix}-{i:05d}.png"), optimize=True)
        taken[label] += 1
        if min(taken) >= per_class:
            break
    print(split, taken)
