"""DVC stage `validate`: great-expectations suite over the shape manifest; drop failing shapes."""

import sys

from shd.config import load_params, section_config
from shd.data.validation import ValidationConfig, ValidationFailed, validate
from shd.stage import console, main


def run() -> None:
    cfg = section_config(load_params(), "validate", ValidationConfig)
    try:
        report = validate(
            "data/prepared",
            "data/validated",
            "reports/validation.json",
            cfg,
            docs_dir="reports/validation_docs",
        )
    except ValidationFailed as exc:
        console.print(f"[red]validation failed:[/red] {exc}", highlight=False)
        sys.exit(1)
    console.print(
        f"validation: kept {report['n_kept']}/{report['n_total']} shapes "
        f"(pass rate {report['pass_rate']:.1%}); drop list in reports/validation.json"
    )


if __name__ == "__main__":
    main(run)
