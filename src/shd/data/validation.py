"""The `validate` stage: check every prepared shape with a great-expectations suite.

The manifest table (one row per shape, `shape_stats`) is validated against a suite defined in code.
Failing shapes are dropped with the expectations they failed (`reports/validation.json`, plus GE's
HTML data docs); the stage fails only when the pass rate is below `min_pass_rate`.
"""

from __future__ import annotations

import logging
import math
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from shd.atomic import read_json_document, write_json
from shd.data.shape import PreparedShape
from shd.data.shape_stats import shape_stats
from shd.data.workers import n_workers, worker_pool
from shd.errors import InputError
from shd.progress import task


@dataclass
class ValidationConfig:
    min_faces: int = 100
    max_abs_coord: float = 0.5
    normalized_extent: tuple[float, float] = (0.45, 0.4751)
    occupancy_ratio: tuple[float, float] = (0.002, 0.6)
    min_part_share: float = 0.002
    required_parts: dict[str, list[str]] = field(
        default_factory=lambda: {"airplane": ["body", "wing"], "chair": ["back", "seat"]}
    )
    min_pass_rate: float = 0.8
    docs: bool = True
    workers: int = 0  # processes computing the per-shape statistics (0: every core)

    def __post_init__(self) -> None:
        n_workers(self.workers, "params.yaml:validate.workers")


class ValidationFailed(RuntimeError):
    """Too few shapes passed; the report is written before this is raised."""


def _shape_row(
    prepared_dir: Path, entry: dict[str, Any], required_parts: dict[str, list[str]]
) -> dict[str, Any]:
    """The manifest row of one prepared shape (a damaged file is a failed row, not an error)."""
    row = {k: entry[k] for k in ("shape_id", "category", "split", "source")}
    row.update(prepare_ok=True, prepare_error="")
    try:
        shape = PreparedShape.load(prepared_dir / entry["file"])
        row.update(shape_stats(shape))
        required = required_parts.get(shape.category, [])
        missing = [p for p in required if row.get(f"area_share_{p}", 0.0) <= 0.0]
        row["missing_required_parts"] = ",".join(missing)
    except InputError as exc:
        row.update(prepare_ok=False, prepare_error=str(exc))
    return row


def manifest_table(prepared_dir: Path, index: dict[str, Any], cfg: ValidationConfig) -> pd.DataFrame:
    """One row per shape of the prepared index (shapes that failed to prepare included); the per-shape
    statistics (a winding-number probe, watertightness) run on `workers` processes, rows in index order."""
    shapes = index["shapes"]
    workers = min(n_workers(cfg.workers, "params.yaml:validate.workers"), max(len(shapes), 1))
    args = ([prepared_dir] * len(shapes), shapes, [cfg.required_parts] * len(shapes))
    rows: list[dict[str, Any]] = []
    with (
        task("validate: shape statistics", total=len(shapes), unit="shapes") as advance,
        ExitStack() as stack,
    ):
        if workers == 1:
            results = map(_shape_row, *args)
        else:
            ex = stack.enter_context(worker_pool(workers, ["shd.data.validation", "igl"]))
            results = ex.map(_shape_row, *args, chunksize=max(1, len(shapes) // (8 * workers)))
        for row in results:
            rows.append(row)
            advance(1)
    for err in index.get("errors", []):
        rows.append(
            {
                "shape_id": err["shape_id"],
                "category": err["category"],
                "split": "",
                "source": "",
                "prepare_ok": False,
                "prepare_error": f"{err['path']}: {err['reason']}",
            }
        )
    return pd.DataFrame(rows)


def _read_index(prepared_dir: Path) -> dict[str, Any]:
    return read_json_document(prepared_dir / "index.json", "run the `prepare` stage first")


def _suite_expectations(cfg: ValidationConfig) -> list[Any]:
    """The expectation suite, in code. Each expectation names the column it checks."""
    import great_expectations.expectations as gxe

    lo, hi = cfg.normalized_extent
    return [
        gxe.ExpectColumnValuesToBeInSet(column="prepare_ok", value_set=[True]),
        gxe.ExpectColumnValuesToBeBetween(column="nan_count", min_value=0, max_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="n_faces", min_value=cfg.min_faces),
        gxe.ExpectColumnValuesToBeInSet(column="watertight", value_set=[True]),
        gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0, strict_min=True),
        gxe.ExpectColumnValuesToBeBetween(column="max_abs_coord", min_value=lo, max_value=hi),
        gxe.ExpectColumnValuesToBeInSet(column="labels_valid", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="missing_required_parts", value_set=[""]),
        gxe.ExpectColumnValuesToBeBetween(column="min_part_share", min_value=cfg.min_part_share),
        gxe.ExpectColumnValuesToBeBetween(
            column="occupancy_ratio", min_value=cfg.occupancy_ratio[0], max_value=cfg.occupancy_ratio[1]
        ),
    ]


def _run_suite(table: pd.DataFrame, cfg: ValidationConfig, docs_dir: Path | None) -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = {"globally": False}
    batch = ctx.data_sources.add_pandas("shapes").add_dataframe_asset("manifest")
    batch_def = batch.add_batch_definition_whole_dataframe("all_shapes")
    suite = ctx.suites.add(gx.ExpectationSuite(name="shape_manifest"))
    for exp in _suite_expectations(cfg):
        suite.add_expectation(exp)
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="shapes", data=batch_def, suite=suite))
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": ["shape_id"]}
    actions = []
    if docs_dir is not None:
        ctx.add_data_docs_site(
            site_name="validation",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir.resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        actions.append(gx.checkpoint.UpdateDataDocsAction(name="data_docs"))
    checkpoint = ctx.checkpoints.add(
        gx.Checkpoint(
            name="validate_shapes", validation_definitions=[vd], actions=actions, result_format=result_format
        )
    )
    run = checkpoint.run(batch_parameters={"dataframe": table})
    return next(iter(run.run_results.values()))


def _json_value(x: Any) -> Any:
    x = x.item() if hasattr(x, "item") else x
    return None if isinstance(x, float) and math.isnan(x) else x


def validate(
    prepared_dir: str | Path,
    out_dir: str | Path,
    report_path: str | Path,
    cfg: ValidationConfig,
    docs_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Validate, write the kept list and the drop report; raise ValidationFailed under the pass rate."""
    prepared_dir, out_dir = Path(prepared_dir), Path(out_dir)
    index = _read_index(prepared_dir)
    table = manifest_table(prepared_dir, index, cfg)
    if table.empty:
        raise InputError(prepared_dir / "index.json", "lists no shapes; nothing to validate")
    with task("validate: expectation suite", total=1, unit="suite") as advance:
        result = _run_suite(table, cfg, Path(docs_dir) if (docs_dir and cfg.docs) else None)
        advance(1)
    reasons: dict[str, list[dict[str, Any]]] = {}
    summary = []
    for r in result.results:
        column = r.expectation_config.kwargs.get("column")
        failed = r.result.get("unexpected_index_list") or []
        summary.append(
            {
                "expectation": r.expectation_config.type,
                "column": column,
                "kwargs": {
                    k: _json_value(v)
                    for k, v in r.expectation_config.kwargs.items()
                    if k not in ("column", "batch_id")
                },
                "n_failed": len(failed),
            }
        )
        for item in failed:
            reasons.setdefault(item["shape_id"], []).append(
                {
                    "expectation": r.expectation_config.type,
                    "column": column,
                    "observed": _json_value(item.get(column)),
                }
            )
    by_id = table.set_index("shape_id")
    dropped = []
    for sid, why in reasons.items():
        row = by_id.loc[sid]
        entry = {"shape_id": sid, "category": row["category"], "split": row["split"], "reasons": why}
        if row["prepare_error"]:
            entry["prepare_error"] = row["prepare_error"]
        dropped.append(entry)
    kept = [s for s in index["shapes"] if s["shape_id"] not in reasons]
    n_total = len(table)
    pass_rate = len(kept) / n_total
    report = {
        "n_total": n_total,
        "n_kept": len(kept),
        "n_dropped": len(dropped),
        "pass_rate": pass_rate,
        "min_pass_rate": cfg.min_pass_rate,
        "kept_per_split": {s: sum(1 for k in kept if k["split"] == s) for s in ("train", "val", "test")},
        "expectations": summary,
        "dropped": dropped,
    }
    write_json(report_path, report)
    write_json(out_dir / "shapes.json", {"categories": index["categories"], "shapes": kept})
    if pass_rate < cfg.min_pass_rate:
        raise ValidationFailed(
            f"only {len(kept)}/{n_total} shapes passed validation ({pass_rate:.1%} < min_pass_rate "
            f"{cfg.min_pass_rate:.0%}); see {report_path}"
        )
    return report
