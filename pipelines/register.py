"""DVC stage `register`: log the trained model as an MLflow pyfunc version of `shd-<category>`, compare
it with the `champion` alias on the same test split, move the alias only when it is better."""

from shd import paths
from shd.atomic import read_json_document, write_json
from shd.config import load_params, section_config
from shd.data.sample_store import SampleSet
from shd.errors import InputError
from shd.jsonio import json_ready
from shd.progress import task
from shd.stage import console, main
from shd.tracking.card import build_card, lineage
from shd.tracking.promotion import RegisterConfig, model_name
from shd.tracking.registry import register

MODEL, SAMPLES, EVAL, OUT = paths.MODEL, paths.SAMPLES, paths.EVAL_JSON, paths.REGISTER_RECORD


def run() -> None:
    params = load_params()
    cfg = section_config(params, "register", RegisterConfig)
    report = read_json_document(EVAL, "run the evaluate stage first (dvc repro evaluate)")
    if report.get("generator") != "diffusion":
        raise InputError(
            EVAL,
            f"scores the generator {report.get('generator')!r}, not the diffusion model; "
            "run the train stage, then evaluate",
        )
    with task("register: model card, MLflow version, champion", total=2, unit="steps") as advance:
        samples = SampleSet.open(SAMPLES)
        test_ids = samples.ids(split="test", category=report.get("category"))
        card = build_card(MODEL, report, test_ids, samples.categories, params, lineage())
        advance(1)
        record = register(MODEL, card, model_name(card["categories"], cfg.model_name), cfg.on_split_mismatch)
        advance(1)
    write_json(OUT, json_ready(record))
    console.print(
        f"register: {record['name']} version {record['version']} {record['decision']}: "
        f"{record['reason']}; champion = version {record['champion']}",
        highlight=False,
    )


if __name__ == "__main__":
    main(run)
