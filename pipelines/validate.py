"""DVC stage `validate`: great-expectations suite over the shape manifest; drop failing shapes."""

import sys

from shd.config import load_params, section_config
from shd.data.validation import ValidationConfig, ValidationFailed, validate
from shd.stage import console, main, write_metrics

REPORT = "reports/validation.json"  # counts, expectations and the drop list
METRICS = "metrics/validation.json"  # its numbers (DVC metrics, tracked by git)
HEADLINE = {"pass_rate": "pass_rate"}


def run() -> None:
    cfg = section_config(load_params(), "validate", ValidationConfig)
    try:
        report = validate(
            "data/prepared",
            "data/validated",
            REPORT,
            cfg,
            docs_dir="reports/validation_docs",
        )
    except ValidationFailed as exc:
        console.print(f"[red]validation failed:[/red] {exc}", highlight=False)
        sys.exit(1)
    write_metrics(METRICS, report, HEADLINE)
    console.print(
        f"validation: kept {report['n_kept']}/{report['n_total']} shapes "
        f"(pass rate {report['pass_rate']:.1%}); drop list in {REPORT}"
    )


if __name__ == "__main__":
    main(run)
