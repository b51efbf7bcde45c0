# A real inference-like GPU load for the command engine: CUDA init stays out of the window.
import json, os, sys, time
import torch
dur = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
cfg = json.load(open(os.environ["LLEM_CONFIG_FILE"]))
a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
torch.cuda.synchronize()
print(json.dumps({"llem": "start"}), flush=True)
t0 = time.time(); n = 0
while time.time() - t0 < dur:
    for _ in range(20):
        c = a @ b
    torch.cuda.synchronize(); n += 20
print(json.dumps({"llem": "stop"}), flush=True)
print(json.dumps({"input_tokens": 0, "output_tokens": n, "requests": 1}), flush=True)
