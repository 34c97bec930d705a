#!/usr/bin/python3
"""Generates the weights test fixtures with Debian's PyTorch (python3-torch 1.13, torchvision 0.14).

Run from this directory:  /usr/bin/python3 make_fixtures.py
Everything is seeded, so a re-run gives the same files (up to zip timestamps).
"""
import json
import os
import re
import struct
from collections import OrderedDict

import torch
import torchvision

torch.manual_seed(20240611)
HERE = os.path.dirname(os.path.abspath(__file__))


def out(name):
    return os.path.join(HERE, name)


# ---------------------------------------------------------------- a tiny torchvision DenseNet
# Same classes as torchvision's densenet121, just small: TransferSharp's DenseNet.Build(name, growth 4,
# blocks [2, 2], init features 8, bn size 2, 10 classes) builds the same graph with the same names.
model = torchvision.models.DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8, bn_size=2,
                                    drop_rate=0, num_classes=10)
with torch.no_grad():
    for name, buf in model.named_buffers():
        # Random running statistics, so that a BatchNorm loaded wrongly shows in the outputs.
        if name.endswith("running_mean"):
            buf.copy_(torch.randn_like(buf) * 0.1)
        elif name.endswith("running_var"):
            buf.copy_(torch.rand_like(buf) + 0.5)
        elif name.endswith("num_batches_tracked"):
            buf.fill_(5)
model.eval()
state = model.state_dict()
x = torch.randn(2, 3, 32, 32)
with torch.no_grad():
    logits = model(x)
    features = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(
        torch.relu(model.features(x)), 1), 1)

# The same weights rounded to float16 (and computed in float32 after loading).
state16 = OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in state.items())
model16 = torchvision.models.DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8, bn_size=2,
                                      drop_rate=0, num_classes=10)
model16.load_state_dict(OrderedDict((k, v.float() if v.is_floating_point() else v) for k, v in state16.items()))
model16.eval()
with torch.no_grad():
    logits16 = model16(x)

# 1. zip format (torch >= 1.6 default), torchvision's current names.
torch.save(state, out("tiny_densenet.pth"))

# 2. legacy (non-zip) format with torchvision's pre-0.3 DenseNet names ("norm.1" for "norm1"). Like
#    torchvision's real densenet121-a639ec97.pth, it predates BatchNorm's num_batches_tracked.
legacy_names = OrderedDict()
for k, v in state.items():
    if k.endswith("num_batches_tracked"):
        continue
    legacy_names[re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k)] = v
assert any(".norm.1." in k for k in legacy_names)
torch.save(legacy_names, out("tiny_densenet_legacy.pth"), _use_new_zipfile_serialization=False)

# 3. a training-script checkpoint: wrapped, saved from DataParallel ("module." prefix), with plain data beside.
wrapped = {
    "epoch": 7,
    "arch": "tiny_densenet",
    "best_acc1": 0.625,
    "state_dict": OrderedDict(("module." + k, v) for k, v in state.items()),
    "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1, 2]}]},
}
torch.save(wrapped, out("tiny_densenet_wrapped.pth"))

# 4. safetensors written here by hand from the format's specification (8-byte little-endian header
#    length, JSON header, raw data), float16 weights, with metadata; independent of TransferSharp's writer.
DTYPES = {torch.float16: "F16", torch.float32: "F32", torch.int64: "I64"}
header, blobs, offset = {"__metadata__": {"format": "pt", "source": "make_fixtures.py"}}, [], 0
for k, v in state16.items():
    data = v.contiguous().numpy().tobytes()
    header[k] = {"dtype": DTYPES[v.dtype], "shape": list(v.shape), "data_offsets": [offset, offset + len(data)]}
    blobs.append(data)
    offset += len(data)
hjson = json.dumps(header, separators=(",", ":")).encode()
hjson += b" " * ((8 - len(hjson) % 8) % 8)
with open(out("tiny_densenet_f16.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hjson)))
    f.write(hjson)
    for b in blobs:
        f.write(b)

with open(out("tiny_densenet_expected.json"), "w") as f:
    json.dump({
        "model": {"growth": 4, "blocks": [2, 2], "init_features": 8, "bn_size": 2, "num_classes": 10},
        "input_shape": list(x.shape),
        "input": x.flatten().tolist(),
        "logits": logits.tolist(),
        "features": features.tolist(),
        "logits_f16_weights": logits16.tolist(),
        "state_dict": {k: list(v.shape) for k, v in state.items()},
    }, f)

# ---------------------------------------------------------------- views, dtypes and plain data
base = torch.arange(60, dtype=torch.float32) * 0.5
views = OrderedDict()
views["slice"] = base[10:22].view(3, 4)           # storage offset 10
views["transposed"] = base[:20].view(4, 5).t()    # strides (1, 5)
views["strided"] = base[::3]                       # stride 3
views["whole"] = base.view(6, 10)                  # the whole shared storage
views["f64"] = torch.linspace(-1, 1, 7, dtype=torch.float64)
views["f16"] = torch.tensor([0.5, -2.0, 65504.0, 0.0009765625], dtype=torch.float16)
views["bf16"] = torch.tensor([1.5, -3.0, 256.0], dtype=torch.bfloat16)
views["i64"] = torch.tensor([-(2 ** 40), 0, 7], dtype=torch.int64)
views["i32"] = torch.tensor([-5, 6], dtype=torch.int32)
views["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
views["i8"] = torch.tensor([-7, 8], dtype=torch.int8)
views["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
views["bool"] = torch.tensor([True, False, True])
views["scalar"] = torch.tensor(3.25)
views["empty"] = torch.zeros(0, 3)
views["param"] = torch.nn.Parameter(torch.full((2, 2), 1.25))
container = {"state_dict": views, "epoch": 3, "note": "views fixture", "lr": 0.01,
             "args": {"a": [1, 2, (3, "x")], "b": None, "c": {1, 2}}, "flag": True, "blob": b"\x00\x01"}
torch.save(container, out("views.pth"))
torch.save(container, out("views_legacy.pth"), _use_new_zipfile_serialization=False)


def values(t):
    if t.dtype == torch.bool:
        return [bool(v) for v in t.flatten().tolist()]
    return t.detach().double().flatten().tolist() if t.is_floating_point() else t.flatten().tolist()


with open(out("views_expected.json"), "w") as f:
    json.dump({k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape), "values": values(v)}
               for k, v in views.items()}, f)

# ---------------------------------------------------------------- a hostile checkpoint
# Loading this with Python's pickle (torch.load without weights_only) runs `touch MARKER`: the pickle
# calls posix.system. TransferSharp must refuse it without running anything.
MARKER = "/tmp/transfersharp-hostile-pickle-ran"


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch " + MARKER,))


torch.save({"state_dict": {"w": torch.ones(2)}, "payload": RunsCode()}, out("hostile_posix_system.pth"))
print("fixtures written to", HERE)
