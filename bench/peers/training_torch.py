"""PyTorch peer for the `training` bench suite: images/s of a fine-tuning step (torchvision model with a
10-class head, train mode, cross-entropy, backward, AdamW, zero_grad) and the process's peak resident memory.
Prints one JSON object. Run with Debian's /usr/bin/python3 (python3-torch, python3-torchvision, libopenblas0-pthread)."""
import json, resource, sys
import torch, torchvision
from peer_timing import median_seconds

def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    model = getattr(torchvision.models, args["model"])(num_classes=10).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    x = torch.randn(args["batch"], 3, 224, 224)
    y = torch.randint(0, 10, (args["batch"],))
    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    s = median_seconds(step, warmup=2, repeats=args["steps"])
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "images_per_second": args["batch"] / s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))

main()
