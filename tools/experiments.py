#!/usr/bin/env python3
"""The paper's Tables 3 and 5 at our scale, one command each, written to docs/experiments.md.

  table5  the sentence objective (Lan et al. 2019, Table 5): three models pretrained with the same
          config, corpus, tokenizer, seed and budget, objective none / NSP / SOP; each scored on
          held-out MLM accuracy and on both sentence tasks (own head where it has one, and a
          linear probe on frozen [CLS] features for every model: `albert-train evaluate`), and
          fine-tuned on the sentiment task (test accuracy, `albert-train finetune --test`).
  table3  cross-layer sharing (Table 3): all-shared, shared-attention, shared-FFN, not-shared,
          SOP, the same budget; parameter count, held-out MLM accuracy, sentiment test accuracy.
          The all-shared SOP model is the one of table5 (trained once).
  all     both.

Usage (from the repository root, after `make release corpus` and
`.venv/bin/python tools/make_downstream_data.py --only sentiment`):

  .venv/bin/python tools/experiments.py table5 [--steps 10000] [--batch-size 32] [--device cpu]
  .venv/bin/python tools/experiments.py table3
  .venv/bin/python tools/experiments.py table3 --steps 3000 --max-seq-length 64 --jobs 2 \
      --out runs/table3 --doc docs/sharing.md          # docs/sharing.md: ~1.5 hours on 2 cores
  .venv/bin/python tools/experiments.py all --quick     # a seconds-long smoke run (CI), tiny model

Every step is a command of ours (printed before it runs); runs already finished under --out are
reused, so an interrupted table continues where it stopped (pretraining resumes exactly). Only the
standard library is used.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import csv
import json
import math
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What the paper reports for ALBERT-base (Table 5, intrinsic tasks, accuracy %).
PAPER_TABLE5 = {
    "none": {"mlm": 54.9, "nsp": 52.4, "sop": 53.3},
    "nsp": {"mlm": 54.5, "nsp": 90.5, "sop": 52.0},
    "sop": {"mlm": 54.0, "nsp": 78.9, "sop": 86.5},
}

TABLE5 = [("objective-none", "none", "all"), ("objective-nsp", "nsp", "all"), ("objective-sop", "sop", "all")]
TABLE3 = [
    ("objective-sop", "sop", "all"),
    ("sharing-attention", "sop", "attention"),
    ("sharing-ffn", "sop", "ffn"),
    ("sharing-none", "sop", "none"),
]


class Runner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.bin = Path(args.bin)
        self.out = Path(args.out)
        self.log: list[str] = []
        self.timings: dict[str, float] = {}
        self.reused: dict[str, Path] = {}
        self.ran: dict[str, str] = {}  # step name -> the command line this invocation ran for it
        # Set in a concurrent run's view of the runner (`job`): the environment and log file of its
        # commands, and the prefix of what it prints.
        self.env: dict[str, str] | None = None
        self.output: Path | None = None
        self.prefix = ""
        for item in args.reuse:
            name, sep, path = item.partition("=")
            if not sep or name not in {n for n, _, _ in TABLE5 + TABLE3}:
                raise SystemExit(f"experiments: --reuse {item!r}: expected RUN=DIR with RUN one of "
                                 f"{sorted({n for n, _, _ in TABLE5 + TABLE3})}")
            self.reused[name] = Path(path)

    def run(self, name: str, cmd: list, capture: bool = False) -> str:
        cmd = [str(c) for c in cmd]
        line = " ".join(shlex.quote(c) for c in cmd)
        print(f"{self.prefix}$ {line}", flush=True)
        self.note(line)
        self.ran[name] = line
        start = time.monotonic()
        if capture or self.output is None:
            result = subprocess.run(cmd, check=False, text=True, capture_output=capture, env=self.env)
        else:
            with open(self.output, "a", encoding="utf-8") as log:
                log.write(f"$ {line}\n")
                log.flush()
                result = subprocess.run(cmd, check=False, text=True, stdout=log, stderr=subprocess.STDOUT,
                                        env=self.env)
        took = time.monotonic() - start
        self.timings[name] = self.timings.get(name, 0.0) + took
        if result.returncode != 0:
            if capture:
                sys.stderr.write(result.stdout + result.stderr)
            where = f" (its output: {self.output})" if self.output and not capture else ""
            raise SystemExit(f"experiments: `{line}` failed with exit code {result.returncode}{where}")
        if self.output is not None and not capture:
            print(f"{self.prefix}finished in {took / 60:.1f} min", flush=True)
        return result.stdout if capture else ""

    def job(self, name: str, jobs: int) -> Runner:
        """The runner as one of `jobs` runs at a time sees it: its commands get an equal share of the
        cores (libtorch's OpenMP and MKL threads) and write their output to OUT/NAME.log, since the
        progress of several runs would mix on one terminal (with one job, as the runner's own). The
        view keeps its own command log: the document lists the commands in table order, whatever
        order the jobs ran them in."""
        view = copy.copy(self)  # shares the timings and the set of commands run
        view.log = []
        if jobs == 1:
            return view
        threads = str(max(1, len(os.sched_getaffinity(0)) // jobs))
        view.env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        view.output = self.out / f"{name}.log"
        view.prefix = f"[{name}] "
        return view

    def note(self, line: str) -> None:
        if line not in self.log:
            self.log.append(line)

    def step(self, name: str, cmd: list, finished: bool) -> bool:
        """Runs one step unless it is finished (or --report-only); the document lists its command
        either way. True when its result is there."""
        if name in self.ran:  # by this invocation, before the tables were written (`train_all`)
            self.note(self.ran[name])
            return True
        if finished or self.args.report_only:
            line = " ".join(shlex.quote(str(c)) for c in cmd)
            self.note(f"{line}  # {'finished earlier' if finished else PENDING}")
            return finished
        self.run(name, cmd)
        return True

    def tool(self, name: str) -> Path:
        return self.bin / name

    def tokenizer(self) -> Path:
        path = self.out / "tokenizer.json"
        self.out.mkdir(parents=True, exist_ok=True)
        self.step("tokenizer", [self.tool("albert-train"), "tokenizer", "--corpus", self.args.train,
                                "--vocab-size", self.args.vocab_size, "-o", path], path.exists())
        return path

    def pretrained(self, name: str, objective: str, sharing: str) -> Path | None:
        """The final checkpoint of one pretraining run (trained, or resumed, if not there yet;
        None under --report-only when it is not finished)."""
        if name in self.reused:
            run_dir = self.reused[name]
            final = run_dir / f"checkpoint-{self.args.steps:08d}"
            if not final.is_dir():
                raise SystemExit(f"experiments: --reuse {name}={run_dir}: {final} not found "
                                 f"(the run must be finished at --steps {self.args.steps})")
            self.note(f"# {name}: reused {final} (trained with this recipe, not rerun)")
            return final
        run_dir = self.out / name
        done = run_dir / "DONE"
        cmd = [self.tool("albert-train"), "pretrain", "--config", self.args.config, "--sharing", sharing,
               "--vocab-size", self.args.vocab_size,
               "--tokenizer", self.tokenizer(), "--train", self.args.train, "--eval", self.args.heldout,
               "--objective", objective, "--steps", self.args.steps, "--batch-size", self.args.batch_size,
               "--max-seq-length", self.args.max_seq_length, "--optimizer", "adamw", "--lr", self.args.lr,
               "--max-predictions", 20, "--warmup-steps", max(1, self.args.steps // 25),
               "--eval-every", max(1, self.args.steps // 20), "--eval-batches", 20,
               "--save-every", max(1, self.args.steps // 20), "--keep", 1, "--seed", self.args.seed,
               "--device", self.args.device, "-o", run_dir]
        if not done.exists() and not self.args.report_only and any(run_dir.glob("checkpoint-*")):
            cmd.append("--resume")
        if not self.step(f"pretrain {name}", cmd, done.exists()):
            return None
        done.write_text("finished\n")
        return sorted(run_dir.glob("checkpoint-*"))[-1]

    def evaluation(self, name: str, checkpoint: Path | None) -> dict | None:
        path = self.out / name / "evaluate.json"
        cmd = [self.tool("albert-train"), "evaluate", "--model", checkpoint or self.out / name / "<final checkpoint>",
               "--eval", self.args.heldout, "--probe-train", self.args.train,
               "--max-seq-length", self.args.max_seq_length, "--examples", self.args.eval_examples,
               "--probe-examples", self.args.probe_examples,
               "--seed", self.args.seed, "--device", self.args.device, "--json", path]
        if checkpoint is None:  # only under --report-only
            self.step(f"evaluate {name}", cmd, False)
            return None
        # A report from before `evaluate` scored each head on the other task too is redone.
        finished = path.exists() and "other_head" in json.loads(path.read_text())["sop"]
        if not self.step(f"evaluate {name}", cmd, finished):
            return None
        return json.loads(path.read_text())

    def finetuned(self, name: str) -> bool:
        """Whether the sentiment fine-tuning of `name` got to its test accuracy."""
        metrics = self.out / name / "sentiment" / "metrics.jsonl"
        return metrics.exists() and '"test"' in metrics.read_text()

    def downstream(self, name: str, checkpoint: Path | None) -> dict | None:
        out = self.out / name / "sentiment"
        metrics = out / "metrics.jsonl"
        finished = self.finetuned(name)
        data = Path(self.args.downstream)
        cmd = [self.tool("albert-train"), "finetune", "--model", checkpoint or self.out / name / "<final checkpoint>",
               "--train", data / "train.csv", "--validation-fraction", 0.1,
               "--test", data / "test.csv", "--epochs", self.args.finetune_epochs,
               "--lr", 1e-4, "--max-seq-length", 64, "--batch-size", 32,
               "--seed", self.args.seed, "--device", self.args.device, "-o", out]
        if checkpoint is None:  # only under --report-only
            self.step(f"finetune {name}", cmd, False)
            return None
        if not self.step(f"finetune {name}", cmd, finished):
            return None
        lines = [json.loads(l) for l in metrics.read_text().splitlines() if l.strip()]
        test = [l for l in lines if l["split"] == "test"][-1]
        best_eval = max((l for l in lines if l["split"] == "eval"), key=lambda l: l["accuracy"])
        return {"test_accuracy": test["accuracy"], "validation_accuracy": best_eval["accuracy"]}

    def progress(self, names: list[str]) -> str:
        """A sentence on the runs of `names` whose results are not all there yet."""
        unfinished = []
        for name in dict.fromkeys(names):
            run = self.reused.get(name, self.out / name)
            if self.finetuned(name) and (self.out / name / "evaluate.json").exists():
                continue
            checkpoints = sorted(run.glob("checkpoint-*"))
            if (run / "DONE").exists() or name in self.reused:
                state = "pretrained; evaluation or fine-tuning to do"
            elif checkpoints:
                state = f"pretraining, checkpoint at step {int(checkpoints[-1].name.split('-')[1]):,} of {self.args.steps:,}"
            elif (run / "metrics.jsonl").exists():
                state = "pretraining, no checkpoint yet"
            else:
                state = "not started"
            unfinished.append(f"{name} ({state})")
        return f"Not finished: {', '.join(unfinished)}." if unfinished else ""

    def chart(self, table: str, runs: list[tuple[str, str]]) -> list[str]:
        """The held-out curves of `runs` (name, label) that have metrics so far, side by side in one
        SVG beside the document (`albert-train curves`); the Markdown that shows it."""
        chart_args = []
        for name, label in runs:
            metrics = self.reused.get(name, self.out / name) / "metrics.jsonl"
            if metrics.exists() and '"split":"eval"' in metrics.read_text():  # evaluated at least once
                chart_args += ["--run", f"{label}={metrics}"]
        if not chart_args:
            return ["No training curves yet.", ""]
        doc = Path(self.args.doc)
        svg = doc.with_name(f"{doc.stem}-{table}.svg")
        self.run(f"curves {table}", [self.tool("albert-train"), "curves", *chart_args, "-o", svg], capture=True)
        return [f"![Held-out curves of the {table} runs]({svg.name})", "",
                "Held-out MLM accuracy and loss and the sentence task's accuracy (own head) against the "
                "pretraining step, a line per run (unfinished runs up to their last evaluation).", ""]

    def parameters(self, sharing: str) -> int:
        text = self.run("params", [self.tool("albert-train"), "params", "--config", self.args.config,
                                   "--sharing", sharing, "--vocab-size", self.args.vocab_size,
                                   "--head", "base", "--json"], capture=True)
        return int(json.loads(text)["total"])


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


PENDING = "not finished"


def field(d: dict | None, *keys: str) -> float | None:
    for k in keys:
        if d is None:
            return None
        d = d.get(k)
    return d


def cell(d: dict | None, *keys: str) -> str:
    return PENDING if d is None else pct(field(d, *keys))


def test_size(r: Runner) -> int:
    with open(Path(r.args.downstream) / "test.csv", newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.DictReader(f))


def sampling_error(r: Runner, evaluated: list[dict], downstream: list[dict], tasks: tuple[str, ...],
                   kinds: tuple[str, ...] = ("head", "other_head", "probe")) -> str:
    """A sentence on how far apart two rows must be to be told apart by these evaluation sets: one
    binomial standard error, sqrt(p (1 - p) / n), the largest over the cells of `kinds` the table
    shows for the rows scored so far."""
    def se(pairs: list[tuple[float | None, int]]) -> str:
        worst = max((math.sqrt(p * (1 - p) / n) for p, n in pairs if p is not None and n), default=None)
        return "–" if worst is None else f"±{100 * worst:.1f}"
    if not evaluated:
        return ""
    parts = [f"MLM {se([(e['mlm_accuracy'], e['mlm_predictions']) for e in evaluated])} "
             f"({evaluated[0]['mlm_predictions']:,} predictions)"]
    for task in tasks:
        pairs = [(e[task].get(kind), e[task]["held_out_examples"]) for e in evaluated
                 for kind in kinds]
        parts.append(f"{task.upper()} {se(pairs)} ({evaluated[0][task]['held_out_examples']:,} examples)")
    if downstream:
        n = test_size(r)
        parts.append(f"sentiment {se([(d['test_accuracy'], n) for d in downstream])} ({n:,} test texts)")
    return ("One standard error of these accuracies, √(p(1−p)/n) on the evaluation sets: "
            + ", ".join(parts) + ". Rows closer than about two standard errors are not told apart by "
            "these sets; the variation between pretraining seeds (one seed per row here) comes on top. ")


def head_cell(ev: dict | None, task: str, other: str) -> str:
    """The model's own head for `task`, or the head it trained for the `other` task read on this
    one (the paper's cross cells: NSP-trained on SOP, SOP-trained on NSP)."""
    if ev is None:
        return PENDING
    if ev[task]["head"] is not None:
        return pct(ev[task]["head"])
    if ev[task].get("other_head") is not None:
        return f"{pct(ev[task]['other_head'])} ({other} head)"
    return "–"


def train_all(r: Runner, rows: list[tuple[str, str, str]], jobs: int) -> None:
    """Pretrains, evaluates and fine-tunes every run of `rows` not finished yet, `jobs` runs at a
    time, before the tables are written from the results. Several runs at a time pay where a small
    model cannot use all the cores in one run (on 2 cores, measured, they gained little)."""
    r.tokenizer()  # once, before runs that share it start
    unique = list({name: (name, objective, sharing) for name, objective, sharing in rows}.values())
    # A failed or interrupted run (Ctrl-C, `kill`: exit 130) stops the others from starting.
    stop = threading.Event()

    def complete(name: str, objective: str, sharing: str) -> None:
        if stop.is_set():
            raise SystemExit("not started: another run failed or was interrupted")
        view = r.job(name, jobs)
        try:
            checkpoint = view.pretrained(name, objective, sharing)
            view.evaluation(name, checkpoint)
            view.downstream(name, checkpoint)
        except SystemExit:
            stop.set()
            raise

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {row[0]: pool.submit(complete, *row) for row in unique}
    failures = []
    for name, future in futures.items():
        try:
            future.result()
        except SystemExit as failure:
            failures.append(f"{name}: {failure}")
    if failures:
        raise SystemExit("\n".join(failures))


def table5(r: Runner) -> list[str]:
    rows = []
    for name, objective, sharing in TABLE5:
        ck = r.pretrained(name, objective, sharing)
        rows.append((objective, r.evaluation(name, ck), r.downstream(name, ck)))
    out = ["## Table 5 at our scale: the sentence objective", "",
           "Accuracy (%) on held-out text. SOP and NSP are scored with the model's sentence head "
           "(\"head\"): its own head for the task it was trained on, and on the other task the same "
           "head read as it stands, since both answer \"is B the natural continuation of A?\" "
           "(\"(SOP head)\": the SOP head on NSP examples, the paper's way of scoring its cross cells); "
           "and, for every model, with a linear probe (logistic regression on the frozen final `[CLS]` "
           "state, trained on examples from the training text). Sentiment: test accuracy after "
           "fine-tuning (best epoch on a 10 % validation split).", "",
           "| objective | MLM | NSP head | NSP probe | SOP head | SOP probe | sentiment (test) | paper MLM / NSP / SOP |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for objective, ev, ds in rows:
        paper = PAPER_TABLE5[objective]
        out.append(f"| {objective} | {cell(ev, 'mlm_accuracy')} | {head_cell(ev, 'nsp', 'SOP')} | {cell(ev, 'nsp', 'probe')} | "
                   f"{head_cell(ev, 'sop', 'NSP')} | {cell(ev, 'sop', 'probe')} | {cell(ds, 'test_accuracy')} | "
                   f"{paper['mlm']} / {paper['nsp']} / {paper['sop']} |")
    evaluated = [ev for _, ev, _ in rows if ev is not None]
    chance = (f"Chance (the more frequent held-out label): SOP {pct(evaluated[0]['sop']['chance'])}, "
              f"NSP {pct(evaluated[0]['nsp']['chance'])}. " if evaluated else "")
    chance += sampling_error(r, evaluated, [ds for _, _, ds in rows if ds is not None], ("sop", "nsp"))
    out += ["", chance + "The paper's finding to check: NSP training leaves SOP near chance (52.0), SOP "
            "training also does well on NSP (78.9). " + r.progress([n for n, _, _ in TABLE5]), ""]
    out += r.chart("table5", [(name, objective) for name, objective, _ in TABLE5])
    return out


def table3(r: Runner) -> list[str]:
    rows = []
    for name, objective, sharing in TABLE3:
        ck = r.pretrained(name, objective, sharing)
        rows.append((sharing, r.parameters(sharing), r.evaluation(name, ck), r.downstream(name, ck)))
    out = ["## Table 3 at our scale: cross-layer sharing", "",
           "Same budget and objective (SOP) for each; parameters of the encoder with embeddings and "
           "pooler (`albert-train params --head base`). SOP with the model's own head and with a linear "
           "probe on its frozen `[CLS]` state (as in Table 5).", "",
           "| sharing | parameters | MLM | SOP head | SOP probe | sentiment (test) |",
           "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for sharing, params, ev, ds in rows:
        out.append(f"| {sharing} | {params:,} | {cell(ev, 'mlm_accuracy')} | {cell(ev, 'sop', 'head')} | "
                   f"{cell(ev, 'sop', 'probe')} | {cell(ds, 'test_accuracy')} |")
    error = sampling_error(r, [ev for _, _, ev, _ in rows if ev is not None],
                           [ds for _, _, _, ds in rows if ds is not None], ("sop",), kinds=("head", "probe"))
    out += ["", error + "The paper (ALBERT-base, E = 128) finds that sharing the feed-forward block costs more "
            "accuracy than sharing attention, and that all-shared trades a little accuracy for a "
            "7.5× smaller model than not-shared. " + r.progress([n for n, _, _ in TABLE3]), ""]
    out += r.chart("table3", [(name, sharing) for name, _, sharing in TABLE3])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table", choices=["table5", "table3", "all"])
    ap.add_argument("--steps", type=int, default=10000, help="pretraining steps per model (default 10000: at 3000 every model is still on the MLM plateau)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate")
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--config", default=str(ROOT / "models/albert-tiny-en/config.json"))
    ap.add_argument("--train", default=str(ROOT / "data/corpus/train.txt"))
    ap.add_argument("--heldout", default=str(ROOT / "data/corpus/heldout.txt"))
    ap.add_argument("--downstream", default=str(ROOT / "data/downstream/sentiment"),
                    help="a folder with train.csv and test.csv (text,label)")
    ap.add_argument("--eval-examples", type=int, default=2000)
    ap.add_argument("--probe-examples", type=int, default=4000)
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--bin", default=str(ROOT / "target/release"), help="where albert-train is")
    ap.add_argument("--out", default=str(ROOT / "runs/experiments"))
    ap.add_argument("--reuse", action="append", default=[], metavar="RUN=DIR",
                    help="take RUN's pretraining from DIR, a finished run of exactly this recipe (e.g. "
                         "objective-sop=runs/albert-tiny-en/stage1: the bundled model's stage 1 is the "
                         "all-shared SOP run at the default budget)")
    ap.add_argument("--doc", default=str(ROOT / "docs/experiments.md"))
    ap.add_argument("--report-only", action="store_true",
                    help="train and evaluate nothing: write the document from the runs finished so far "
                         f"(the others are '{PENDING}')")
    ap.add_argument("--jobs", type=int, default=1,
                    help="runs trained at a time, each with an equal share of the cores and its output in "
                         "OUT/RUN.log (default 1; on 2 cores two runs gained little over one, measured: docs/experiments-paper.md)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 4 steps, small eval/probe sets, 1 fine-tuning epoch (numbers meaningless)")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.eval_examples, args.probe_examples, args.finetune_epochs = 4, 32, 64, 1
    for path, what in [(args.train, "--train"), (args.heldout, "--heldout"), (args.config, "--config"),
                       (Path(args.downstream) / "train.csv", "--downstream"), (Path(args.bin) / "albert-train", "--bin")]:
        if not Path(path).exists():
            raise SystemExit(f"experiments: {what}: {path} not found")

    if args.jobs < 1:
        raise SystemExit(f"experiments: --jobs {args.jobs}: expected at least 1")

    r = Runner(args)
    started = time.monotonic()
    if not args.report_only:
        train_all(r, (TABLE5 if args.table in ("table5", "all") else [])
                  + (TABLE3 if args.table in ("table3", "all") else []), args.jobs)
    sections = []
    if args.table in ("table5", "all"):
        sections += table5(r)
    if args.table in ("table3", "all"):
        sections += table3(r)
    total = time.monotonic() - started

    doc = Path(args.doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    budget = (f"{args.steps} steps × {args.batch_size} sequences of ≤ {args.max_seq_length} tokens, AdamW "
              f"lr {args.lr}, seed {args.seed}, device {args.device}; sentiment fine-tuning "
              f"{args.finetune_epochs} epoch(s)")
    text = ["# Experiments: the paper's tables at our scale", "",
            f"Made by `tools/experiments.py {shlex.join(argv)}` "
            f"({'smoke run: the numbers mean nothing' if args.quick else 'the numbers below'}). "
            f"Config `{args.config}`, corpus `{args.train}`, held-out `{args.heldout}`; budget per "
            f"model: {budget}. "
            + ("This invocation only reported (--report-only). " if args.report_only else
               f"Wall time of this invocation: {total / 60:.1f} min, {args.jobs} run(s) at a time "
               f"(runs reused from `{args.out}` take none). ")
            + f"Each run's own training curves: `{args.out}/<run>/curves.svg`.", ""]
    text += sections
    text += ["## Commands", "", "```sh"] + r.log + ["```", "", "## Time per step (this invocation)", "",
             "Wall time of each step; with more than one run at a time (--jobs), the steps of "
             "different runs overlap.", "", "| step | seconds |", "| --- | ---: |"]
    text += [f"| {k} | {v:.0f} |" for k, v in r.timings.items()]
    tmp = doc.with_suffix(".tmp")
    tmp.write_text("\n".join(text).replace(f"{ROOT}/", "") + "\n")
    tmp.replace(doc)
    print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
