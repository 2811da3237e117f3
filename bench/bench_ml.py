"""Benchmark: `dbt build` including the ml models at 1M generated sessions (target <= 5 min).

    .venv/bin/python -m bench.bench_ml [--sessions 1000000] [--workdir DIR]

Generates N sessions (seed 42, 365 days) into a fresh warehouse under --workdir (default: a
temporary folder), runs `dbt seed`, then times one full `dbt build` (SQL and ml models, all
tests) with its own target and log folders. Per-model times come from dbt's run_results.json.
The ml controls are the project defaults (dbt vars ml_n_estimators, ml_max_training_rows,
ml_n_jobs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import yaml
from sklearn.metrics import adjusted_rand_score

from bench.common import ROOT, dbt_command, markdown_table, peak_rss_mib, write_section

TARGET_SESSIONS = 1_000_000
TARGET_SECONDS = 300.0
ML_MODELS = {p.stem for p in (ROOT / "models" / "ml").iterdir() if p.suffix in {".py", ".sql"}}


def run_dbt(args: list[str], db: Path, work: Path) -> float:
    """Run dbt on `db` with its own target/log folders; return wall seconds."""
    cmd, env = dbt_command(args, db, work)
    began = time.perf_counter()
    subprocess.run(
        cmd,
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - began


def node_times(work: Path) -> dict[str, float]:
    """Execution seconds per model from the last run's run_results.json."""
    results = json.loads((work / "target" / "run_results.json").read_text())["results"]
    return {
        r["unique_id"]: float(r["execution_time"])
        for r in results
        if r["unique_id"].startswith("model.")
    }


def figures(db: Path) -> dict[str, float]:
    """Headline model figures from the built warehouse."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select model_name, metric, value, baseline_value from ml.model_metrics "
            "where split = 'test' and class_label is null"
        ).fetchall()
        seg = con.execute(
            "select g.persona, s.segment_name from ml.customer_segments s "
            "join ground_truth.customer_personas g using (customer_id)"
        ).fetchall()
        counts = dict(
            con.execute(
                "select 'sessions', count(*) from marts.fct_sessions union all "
                "select 'customers', count(*) from ml.customer_segments union all "
                "select 'order lines', count(*) from marts.fct_order_lines"
            ).fetchall()
        )
    out = {f"{m}:{k}": v for m, k, v, _ in rows}
    out.update({f"{m}:{k}:baseline": b for m, k, _, b in rows})
    out["ari"] = adjusted_rand_score([p for p, _ in seg], [s for _, s in seg])
    out.update(counts)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=TARGET_SESSIONS)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    from shoplens.generate import generate_and_load

    with tempfile.TemporaryDirectory(prefix="bench_ml_") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        db = work / "warehouse.duckdb"
        db.unlink(missing_ok=True)
        generate_and_load(
            db,
            sessions=args.sessions,
            seed=42,
            days=365,
            end=dt.date(2026, 10, 31),
            defect_rate=0.01,
            progress=False,
        )
        run_dbt(["seed"], db, work)
        seconds = run_dbt(["build"], db, work)
        times = node_times(work)
        fig = figures(db)
    ml = {
        name: times[uid]
        for uid, name in ((u, u.split(".")[-1]) for u in times)
        if name in ML_MODELS
    }
    ml_total = sum(ml.values())
    print(json.dumps({"seconds": seconds, "ml": ml, "figures": fig}, indent=1), file=sys.stderr)
    vars_ = yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]
    ok = seconds <= TARGET_SECONDS
    metric = lambda m, k: f"{fig.get(f'{m}:{k}', float('nan')):.3f}"  # noqa: E731
    base = lambda m, k: f"{fig.get(f'{m}:{k}:baseline', float('nan')):.3f}"  # noqa: E731
    model_rows = [
        [
            m,
            e,
            metric(m, "accuracy"),
            base(m, "accuracy"),
            metric(m, "f1"),
            metric(m, "roc_auc"),
            metric(m, "pr_auc"),
            base(m, "pr_auc"),
        ]
        for m, e in (
            ("purchase_intent", "time hold-out"),
            ("purchase_intent_stratified", "stratified 75/25"),
            ("session_study_replication", "stratified 75/25"),
            ("session_study_replication_no_leak", "stratified 75/25"),
        )
    ]
    body = "\n\n".join(
        [
            f"Full `dbt build` (seeds excluded; every SQL and ml model and all tests) on "
            f"{args.sessions:,} generated sessions (seed 42, 365 days): "
            f"{fig.get('sessions', 0):,} sessions, {fig.get('order lines', 0):,} order lines, "
            f"{fig.get('customers', 0):,} segmented customers. ml controls: "
            f"ml_n_estimators={vars_['ml_n_estimators']}, "
            f"ml_max_training_rows={vars_['ml_max_training_rows']:,}, "
            f"ml_n_jobs={vars_['ml_n_jobs']}, ml_seed={vars_['ml_seed']}.",
            "Command: `.venv/bin/python -m bench.bench_ml`",
            markdown_table(
                ["step", "seconds"],
                [
                    ["dbt build (total)", f"{seconds:.1f}"],
                    ["ml models (sum of model times)", f"{ml_total:.1f}"],
                    *[
                        [f"ml.{k}", f"{v:.1f}"]
                        for k, v in sorted(ml.items(), key=lambda kv: -kv[1])
                        if v >= 1.0
                    ],
                ],
            ),
            "Test-split figures (majority-class baseline beside):",
            markdown_table(
                [
                    "model",
                    "evaluation",
                    "accuracy",
                    "baseline acc.",
                    "F1",
                    "ROC AUC",
                    "PR AUC",
                    "baseline PR AUC",
                ],
                model_rows,
            ),
            f"category_choice: accuracy {metric('category_choice', 'accuracy')} vs baseline "
            f"{base('category_choice', 'accuracy')}, "
            f"macro-F1 {metric('category_choice', 'macro_f1')}"
            f" vs {base('category_choice', 'macro_f1')}. Segments vs designed personas: adjusted "
            f"Rand index {fig['ari']:.3f} (target >= 0.8).",
            f"**{'PASS' if ok else 'FAIL'}**: `dbt build` including ml at {args.sessions:,} "
            f"sessions in {seconds:.1f} s (target <= {TARGET_SECONDS:.0f} s at "
            f"{TARGET_SESSIONS:,}). Peak memory of the dbt process: "
            f"{peak_rss_mib(children=True):,.0f} MiB. Measured while other engineers shared the "
            "2 cores.",
        ]
    )
    if args.sessions == TARGET_SESSIONS:
        write_section("ml", "dbt build including ml models (issue #4)", body)
    print(body)


if __name__ == "__main__":
    main()
