"""PyTorch peer for the `vision` bench suite: eval images/s of torchvision (and, with timm on PYTHONPATH, timm) models, NCHW and
channels_last, and the fp32 matmul peak, with the given thread count. Prints one JSON object.
Run with Debian's /usr/bin/python3 (python3-torch, python3-torchvision, libopenblas0-pthread)."""
import json, sys
import torch, torchvision
from peer_timing import median_seconds

def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "models": {}}
    n = 4096
    a, b = torch.randn(n, n), torch.randn(n, n)
    s = median_seconds(lambda: torch.mm(a, b), warmup=1, repeats=3)
    out["matmul_gflops"] = 2 * n ** 3 / s / 1e9
    del a, b
    for name, size, source, reference_model in args["models"]:
        if source == "timm":
            import timm
            model = timm.create_model(reference_model).eval()
        else:
            model = getattr(torchvision.models, name)().eval()
        x = torch.randn(args["batch"], 3, size, size)
        res = {}
        with torch.no_grad():
            res["nchw"] = args["batch"] / median_seconds(lambda: model(x))
            mcl = model.to(memory_format=torch.channels_last)
            xcl = x.to(memory_format=torch.channels_last)
            res["channels_last"] = args["batch"] / median_seconds(lambda: mcl(xcl))
        out["models"][name] = res
    print(json.dumps(out))

main()
