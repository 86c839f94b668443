"""The server users write today, as the baseline albert-serve is measured against: ONNX Runtime
(Python) and HF `tokenizers` behind uvicorn, serving TEI's `POST /embed` for an export made by
albert-export (mean pooling over the attention mask, unit length, truncation to the model's
length), one request at a time per call, no batching across requests.

    .venv-baseline/bin/python tools/serve_baseline.py MODEL_DIR --port 8081 [--threads N]

tools/serve_bench.sh makes .venv-baseline with the pinned versions below and runs albert-load
against this server beside albert-serve.
"""

import argparse
import json
import pathlib

import numpy as np
import onnxruntime as ort
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tokenizers import Tokenizer

PINNED = "onnxruntime==1.31.1 tokenizers==0.23.3 starlette==1.10.0 uvicorn==0.54.0 numpy==2.4.6"


def make_app(model_dir: pathlib.Path, threads: int) -> Starlette:
    config = json.loads((model_dir / "config.json").read_text())
    max_length = config["max_position_embeddings"]
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])

    async def embed(request: Request) -> JSONResponse:
        body = await request.json()
        texts = body["inputs"] if isinstance(body["inputs"], list) else [body["inputs"]]
        if body.get("truncate", False):
            tokenizer.enable_truncation(max_length)
        encodings = tokenizer.encode_batch(texts)
        longest = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), longest), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
            types[row, : len(e.ids)] = e.type_ids
        hidden = session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
        return JSONResponse(pooled.tolist())

    return Starlette(routes=[Route("/embed", embed, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=pathlib.Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    uvicorn.run(make_app(args.model_dir, args.threads), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
