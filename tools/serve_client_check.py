"""Calls a running albert-serve with third-party clients and prints what they got, as JSON.

    .venv/bin/python tools/serve_client_check.py openai URL MODEL TEXT...

`openai`: the official `openai` client (installed by tools/setup.sh) on `/v1/embeddings`, once
with its default encoding (it asks the server for base64 and decodes it itself) and once with
`encoding_format="float"`; prints {"base64": [[...]], "float": [[...]], "model": ..., "usage": ...}.
The Rust test crates/albert-serve/tests/clients.rs compares the vectors with albert-runtime's.
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


def main() -> None:
    if len(sys.argv) < 5 or sys.argv[1] != "openai":
        sys.exit(__doc__)
    _, _, url, model, *texts = sys.argv
    print(json.dumps(check_openai(url, model, texts)))


if __name__ == "__main__":
    main()
