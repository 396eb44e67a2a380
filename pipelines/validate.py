"""DVC stage `validate`: great-expectations suite over the shape manifest; drop failing shapes."""

import sys

from shd import paths
from shd.config import load_params, section_config
from shd.data.validation import ValidationConfig, ValidationFailed, validate
from shd.stage import console, main, write_metrics

HEADLINE = {"pass_rate": "pass_rate"}  # reports/validation.json (drop list) -> metrics/validation.json


def run() -> None:
    cfg = section_config(load_params(), "validate", ValidationConfig)
    try:
        report = validate(
            paths.PREPARED,
            paths.VALIDATED,
            paths.VALIDATION_REPORT,
            cfg,
            docs_dir=paths.VALIDATION_DOCS,
        )
    except ValidationFailed as exc:
        console.print(f"[red]validation failed:[/red] {exc}", highlight=False)
        sys.exit(1)
    write_metrics(paths.VALIDATION_METRICS, report, HEADLINE)
    console.print(
        f"validation: kept {report['n_kept']}/{report['n_total']} shapes "
        f"(pass rate {report['pass_rate']:.1%}); drop list in {paths.VALIDATION_REPORT}"
    )


if __name__ == "__main__":
    main(run)
