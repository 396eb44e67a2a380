import numpy as np

from shd.diffusion.evaluate import generation_report

from .test_denoiser import _sampler


def test_a_report_without_usable_clouds_still_names_its_normalization():
    report = generation_report(_sampler(), np.zeros((0, 16, 3), np.float32), 2, steps=2, resolution=8)
    assert report["normalization"] == "unit_std" and report["mmd"] is None
