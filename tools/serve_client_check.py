"""Calls a running albert-serve with third-party clients and prints what they got, as JSON.

    .venv/bin/python tools/serve_client_check.py openai URL MODEL TEXT...
    .venv/bin/python tools/serve_client_check.py triton URL MODEL TEXT...

`openai`: the official `openai` client (installed by tools/setup.sh) on `/v1/embeddings`, once
with its default encoding (it asks the server for base64 and decodes it itself) and once with
`encoding_format="float"`; prints {"base64": [[...]], "float": [[...]], "model": ..., "usage": ...}.
`triton`: `tritonclient[http]` (installed by tools/setup.sh) on the Open Inference Protocol v2
routes: server and model liveness, readiness and metadata, then one inference of the texts as a
BYTES tensor `TEXT` of shape [N] with the client's defaults (binary tensor data both ways) and one
with JSON data; prints the metadata and {output name: {"shape": [...], "data": [...]}} for each.

The Rust test crates/albert-serve/tests/clients.rs compares what they got with albert-runtime's.
"""

import json
import sys


def check_openai(url: str, model: str, texts: list[str]) -> dict:
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
    default = client.embeddings.create(model=model, input=texts)
    floats = client.embeddings.create(model=model, input=texts, encoding_format="float")
    return {
        "base64": [d.embedding for d in default.data],
        "float": [d.embedding for d in floats.data],
        "indices": [d.index for d in default.data],
        "model": default.model,
        "usage": {"prompt_tokens": default.usage.prompt_tokens, "total_tokens": default.usage.total_tokens},
    }


def check_triton(url: str, model: str, texts: list[str]) -> dict:
    import numpy as np
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=url.removeprefix("http://"))
    result = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "server": client.get_server_metadata(),
        "model_ready": client.is_model_ready(model),
        "model": client.get_model_metadata(model),
    }
    for binary in (True, False):
        text = httpclient.InferInput("TEXT", [len(texts)], "BYTES")
        text.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object), binary_data=binary)
        outputs = [
            httpclient.InferRequestedOutput(o["name"], binary_data=binary) for o in result["model"]["outputs"]
        ]
        answer = client.infer(model, [text], outputs=outputs, request_id="check-1")
        result["binary" if binary else "json"] = {
            o["name"]: {"shape": list(answer.as_numpy(o["name"]).shape), "data": answer.as_numpy(o["name"]).ravel().tolist()}
            for o in result["model"]["outputs"]
        }
        result["id"] = answer.get_response()["id"]
    return result


def main() -> None:
    if len(sys.argv) < 5 or sys.argv[1] not in ("openai", "triton"):
        sys.exit(__doc__)
    _, client, url, model, *texts = sys.argv
    check = check_openai if client == "openai" else check_triton
    print(json.dumps(check(url, model, texts)))


if __name__ == "__main__":
    main()
