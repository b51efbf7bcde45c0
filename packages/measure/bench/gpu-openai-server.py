# A small OpenAI-compatible completions server that really decodes on the GPU, for checking llem's
# managed-server path (`server:`) and its energy figures on a machine where vLLM is not installed.
# A randomly initialised GPT-2-shaped model (no download), greedy decoding with a KV cache, one
# decode step at a time across requests (a lock per step), streamed as SSE with a usage chunk.
#   python3 gpu-openai-server.py --port 8000 [--dtype float16|bfloat16|float32] [--layers 24]
#   python3 gpu-openai-server.py --port 8000 --fake     # no torch: sleeps instead (protocol checks)
# Endpoints: GET /v1/models, POST /v1/completions (stream), POST /tokenize, GET /metrics.
import argparse, json, threading, time, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--dtype", default="float16")
p.add_argument("--layers", type=int, default=24)
p.add_argument("--hidden", type=int, default=1024)
p.add_argument("--model-name", default="gpt2-random")
p.add_argument("--fake", action="store_true")
args = p.parse_args()

VOCAB = 50257
lock = threading.Lock()
stats = {"requests": 0, "prompt_tokens": 0, "generation_tokens": 0, "running": 0}

if not args.fake:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=args.layers, n_embd=args.hidden, n_head=args.hidden // 64, vocab_size=VOCAB, n_positions=4096)
    model = GPT2LMHeadModel(cfg).to("cuda", dtype=getattr(torch, args.dtype)).eval()


def token_ids(text):
    return [zlib.crc32(w.encode()) % VOCAB for w in text.split()] or [0]


def generate(prompt_ids, max_tokens):
    """Yields one token id at a time; each step holds the GPU lock."""
    if args.fake:
        for i in range(max_tokens):
            time.sleep(0.005)
            yield (sum(prompt_ids) + i) % VOCAB
        return
    with torch.inference_mode():
        ids = torch.tensor([prompt_ids[-2048:]], device="cuda")
        past = None
        for _ in range(max_tokens):
            with lock:
                out = model(input_ids=ids, past_key_values=past, use_cache=True)
                past = out.past_key_values
                nxt = int(out.logits[0, -1].argmax())
                torch.cuda.synchronize()
            ids = torch.tensor([[nxt]], device="cuda")
            yield nxt


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            return self.send_json(200, {"object": "list", "data": [{"id": args.model_name, "object": "model"}]})
        if self.path == "/metrics":
            text = (
                "# TYPE gpu_server_requests_total counter\n"
                f"gpu_server_requests_total {stats['requests']}\n"
                "# TYPE gpu_server_prompt_tokens_total counter\n"
                f"gpu_server_prompt_tokens_total {stats['prompt_tokens']}\n"
                "# TYPE gpu_server_generation_tokens_total counter\n"
                f"gpu_server_generation_tokens_total {stats['generation_tokens']}\n"
                "# TYPE gpu_server_running gauge\n"
                f"gpu_server_running {stats['running']}\n"
            )
            return self.send_json(200, text.encode(), "text/plain; version=0.0.4")
        self.send_json(404, {"error": "not found"})

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def chunk(self, obj):
        data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self):
        body = self.read_body()
        if self.path == "/tokenize":
            text = body.get("prompt", body.get("content", ""))
            toks = token_ids(text) if text.strip() else []
            return self.send_json(200, {"tokens": toks, "count": len(toks), "max_model_len": 4096})
        if self.path != "/v1/completions":
            return self.send_json(404, {"error": "not found"})
        prompt = body.get("prompt", "")
        ids = token_ids(prompt)
        max_tokens = int(body.get("max_tokens", 16))
        stats["requests"] += 1
        stats["prompt_tokens"] += len(ids)
        stats["running"] += 1
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            n = 0
            for tok in generate(ids, max_tokens):
                n += 1
                stats["generation_tokens"] += 1
                self.chunk({"id": "cmpl", "object": "text_completion", "model": args.model_name,
                            "choices": [{"index": 0, "text": f" w{tok}", "finish_reason": None}]})
            self.chunk({"id": "cmpl", "object": "text_completion", "model": args.model_name,
                        "choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                self.chunk({"id": "cmpl", "object": "text_completion", "model": args.model_name, "choices": [],
                            "usage": {"prompt_tokens": len(ids), "completion_tokens": n, "total_tokens": len(ids) + n}})
            self.chunk(b"[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            stats["running"] -= 1


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
