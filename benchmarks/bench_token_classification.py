"""Token classification: all-MiniLM-L6-v2 + LoRA on a CoNLL-2003 subset; entity F1 (seqeval) on the
test split and training speed, against a plain Trainer + peft script.

* ``hubmgr``: ``train(TrainConfig(task="token-classification", ...))``, defaults except the epochs.
* ``baseline``: the Hugging Face course's token-classification recipe with peft - tokenize the words,
  label the first sub-word of each word, ``DataCollatorForTokenClassification`` (dynamic padding),
  random batches, LoRA r=8 alpha=16 dropout=0.1 on query/value with the classifier trained - with the
  same batch size (32), learning rate (1e-3) and epochs as the hubmgr arm.

Both train on the same seeded subset of CoNLL-2003 train and are scored on the test split.

    python benchmarks/bench_token_classification.py [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import _sst2 as S  # noqa: E402

NAME = "token_classification"
T_PROCESS = time.perf_counter()


def baseline_run(
    model_path: str,
    train_path: Path,
    test_path: Path,
    *,
    out_dir: Path,
    epochs: float,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    train_rows = C.read_jsonl(train_path)
    test_rows = C.read_jsonl(test_path)
    names = C.ner_label_names(train_rows)
    label2id = {n: i for i, n in enumerate(names)}
    tok = AutoTokenizer.from_pretrained(model_path)

    encode = C.ner_encoder(tok, label2id, 128)

    cols = ["tokens", "pos", "ner_tags"]
    train_ds = Dataset.from_list(train_rows).map(encode, batched=True, remove_columns=cols)
    test_ds = Dataset.from_list(test_rows).map(encode, batched=True, remove_columns=cols)
    model = AutoModelForTokenClassification.from_pretrained(
        model_path, num_labels=len(names), id2label=dict(enumerate(names)), label2id=label2id
    )
    model = get_peft_model(
        model,
        LoraConfig(
            task_type=TaskType.TOKEN_CLS, r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"]
        ),
    )
    clock, timing = C.loop_clock()

    metrics = C.ner_f1_metric(names)

    args = TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64,
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=50,
        report_to=[],
        use_cpu=True,
        seed=42,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=test_ds,
        data_collator=DataCollatorForTokenClassification(tok),
        compute_metrics=metrics,
        callbacks=[clock],
    )
    trainer.train()
    loop = timing["end"] - timing["begin"]
    result = trainer.evaluate()
    return {
        "train_examples": len(train_ds),
        "loop_seconds": loop,
        "samples_per_second": len(train_ds) * epochs / loop,
        "test_f1": result.get("eval_f1"),
        "torch_threads": torch.get_num_threads(),
        "settings": {
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "epochs": epochs,
            "lora": {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": ["query", "value"]},
            "padding": "dynamic (DataCollatorForTokenClassification)",
            "batches": "random",
        },
    }


def arm_main(args: Any) -> None:
    C.set_threads(args.threads)
    work = Path(args.work) / args.arm
    if args.arm == "hubmgr":
        out = S.hubmgr_run(
            args.model,
            Path(args.train),
            Path(args.test),
            out_dir=work,
            task="token-classification",
            overrides={"epochs": float(args.epochs)},
            t_process=T_PROCESS,
        )
        out["test_f1"] = out["metrics"].get("eval_f1")
    elif args.arm == "baseline":
        out = baseline_run(args.model, Path(args.train), Path(args.test), out_dir=work, epochs=float(args.epochs))
    else:
        raise SystemExit(f"unknown arm {args.arm}")
    C.write_arm_result(args.arm_out, out)


def body(record: dict[str, Any], args: Any) -> dict[str, Any]:
    model = str(C.minilm_path())
    data = C.dataset_dir("conll2003", "train.jsonl", "test.jsonl")
    script = Path(__file__).resolve()
    n_train = args.train_samples or (400 if args.quick else 4000)
    n_test = 400 if args.quick else None
    epochs = args.epochs or (1 if args.quick else 2)
    with tempfile.TemporaryDirectory(prefix="hubmgr-bench-ner-") as tmp_s:
        tmp = Path(tmp_s)
        env = C.isolated_env(tmp, args.threads)
        train = S.subset_file(data / "train.jsonl", tmp / "train.jsonl", n_train)
        test = S.subset_file(data / "test.jsonl", tmp / "test.jsonl", n_test) if n_test else data / "test.jsonl"
        common = [
            "--threads",
            str(args.threads),
            "--model",
            model,
            "--train",
            str(train),
            "--test",
            str(test),
            "--work",
            str(tmp),
            "--epochs",
            str(epochs),
        ]
        arms = {arm: C.run_arm(script, arm, common, env=env, timeout=4 * 3600) for arm in ("baseline", "hubmgr")}
    hub, base = arms["hubmgr"], arms["baseline"]
    speedup = hub["samples_per_second"] / base["samples_per_second"]
    record["commands"] = [base["command"], hub["command"]]
    record["results"] = {
        "train_sentences": n_train,
        "test_sentences": n_test or 3453,
        "epochs": epochs,
        "arms": {
            "baseline": {
                "test_f1": base["test_f1"],
                "samples_per_second": base["samples_per_second"],
                "loop_seconds": base["loop_seconds"],
                "peak_rss_bytes": base["peak_rss_bytes"],
                "settings": base["settings"],
            },
            "hubmgr": {
                "test_f1": hub["test_f1"],
                "samples_per_second": hub["samples_per_second"],
                "loop_seconds": hub["loop_seconds"],
                "peak_rss_bytes": hub["peak_rss_bytes"],
                "config": hub["config"],
                "metrics": hub["metrics"],
            },
        },
        "speedup_samples_per_second": speedup,
    }
    record["targets"] = [
        C.target("entity F1 on CoNLL-2003 test (hubmgr)", goal="report", value=hub["test_f1"], met=None),
        C.target("training speed vs plain Trainer", goal="report", value=round(speedup, 2), met=None),
    ]
    return record


def main() -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=None, help="training sentences (default 4000)")
    parser.add_argument("--epochs", type=float, default=None, help="epochs for both arms (default 2)")
    for name in ("--model", "--train", "--test", "--work"):
        parser.add_argument(name, help=C.argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        arm_main(args)
        return 0
    return C.run_benchmark(NAME, args, lambda rec: body(rec, args), title="Token classification (CoNLL-2003)")


if __name__ == "__main__":
    sys.exit(main())
