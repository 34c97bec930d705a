"""PyTorch peer for the `vision` bench suite, driven one timed call at a time so that its rounds interleave with ours
(ours, peer, ours, peer, ...) and load from other processes on the shared machine falls on both alike.

argv[1] is a JSON object {"threads": N}. The peer answers one JSON line on stdout at start (versions, threads, the
BLAS library loaded) and then one JSON line for each JSON command it reads from stdin:
  {"op": "matmul", "n": 4096}                          -> {"seconds": s} for one n x n x n float32 product
  {"op": "load", "name", "size", "source", "reference_model", "batch"}
                                                       -> {"ok": true}; builds the model in eval mode
  {"op": "run", "layout": "nchw" | "channels_last"}    -> {"seconds": s} for one forward pass of the loaded model
The input is the same as the suite's own (input_pattern), so both sides compute on identical values.
Run with Debian's /usr/bin/python3 (python3-torch, python3-torchvision, libopenblas0-pthread; timm on PYTHONPATH for
timm's models)."""
import json, sys, time
import torch, torchvision


def input_pattern(batch, size):
    # Deterministic values in [-1, 1): VisionBench.InputPattern builds the same tensor with the same integer ops.
    n = batch * 3 * size * size
    return torch.arange(n, dtype=torch.int64).mul(7919).remainder(1000).to(torch.float32).div(500).sub(1).reshape(batch, 3, size, size)


def blas_libraries():
    # Debian's torch calls whatever libblas.so.3 the alternatives system points at; the reference BLAS there
    # (libblas3, no libopenblas0-*) runs ViT's linear layers ~50x slower than OpenBLAS, so the suite checks this.
    with open("/proc/self/maps") as maps:
        return sorted({line.split()[-1] for line in maps if "blas" in line.rsplit("/", 1)[-1]})


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def timed(fn):
    # inference_mode: no autograd records and no version counters, PyTorch's fastest eval path.
    with torch.inference_mode():
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t


def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    reply({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_libraries()})
    model = model_cl = x = x_cl = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "matmul":
            n = cmd["n"]
            a, b = torch.randn(n, n), torch.randn(n, n)
            reply({"seconds": timed(lambda: torch.mm(a, b))})
        elif op == "load":
            model = model_cl = x = x_cl = None
            if cmd["source"] == "timm":
                import timm
                model = timm.create_model(cmd["reference_model"])
            else:
                model = getattr(torchvision.models, cmd["name"])()
            model = model.eval()
            x = input_pattern(cmd["batch"], cmd["size"])
            if cmd.get("channels_last", True):
                # A copy: .to(memory_format=...) converts the module in place, and NCHW rounds follow.
                import copy
                model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
                x_cl = x.to(memory_format=torch.channels_last)
            reply({"ok": True})
        elif op == "run":
            if cmd["layout"] == "channels_last":
                reply({"seconds": timed(lambda: model_cl(x_cl))})
            else:
                reply({"seconds": timed(lambda: model(x))})
        else:
            raise ValueError(f"unknown op {op!r}")


main()
