#!/usr/bin/env python3
"""ONNX Runtime's own int8 recipe on any ONNX model, as the anchor albert-convert's int8 is
compared with: `quant_pre_process` (with `skip_symbolic_shape=True`: its symbolic shape inference
fails on ALBERT) then `quantize_dynamic(per_channel=True, weight_type=QInt8)`. Run by hand:

    .venv/bin/python tools/ort_quantize.py my-albert-onnx -o my-albert-ort-int8

A model directory's config.json and tokenizer.json are copied beside the output, so
`albert-convert my-albert-ort-int8 -o x.onnx --verify --reference my-albert-onnx/model.onnx
--text held-out.txt` measures its drift on real text the same way as ours.
"""

import argparse
import os
import shutil
import tempfile
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="a model directory (model.onnx) or a .onnx file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    args = parser.parse_args()

    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = args.input / "model.onnx" if args.input.is_dir() else args.input
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # quant_pre_process writes scratch files into the working directory when it fails.
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(source.resolve()), str(pre), skip_symbolic_shape=True)
            quantize_dynamic(str(pre), str((args.output / "model.onnx").resolve()),
                             per_channel=True, weight_type=QuantType.QInt8)
        finally:
            os.chdir(cwd)
    if args.input.is_dir():
        for name in ("config.json", "tokenizer.json"):
            if (args.input / name).exists():
                shutil.copy(args.input / name, args.output / name)
    size = (args.output / "model.onnx").stat().st_size
    print(f"{args.output / 'model.onnx'}: {size} bytes ({size / source.stat().st_size:.3f} of the input)")


if __name__ == "__main__":
    main()
