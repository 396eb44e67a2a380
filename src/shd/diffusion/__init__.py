"""Weight-space diffusion: a transformer denoiser over per-tensor tokens of fitted fields.

Modules have one job each and are imported directly, so that sampling an exported model does not pay
for Lightning or MLflow:

- `config`: net / schedule / training configurations (frozen dataclasses, params.yaml sections);
- `tokens`: flat weight vector <-> per-block tokens, and per-block (grouped) linear maps;
- `normalization`: per-block or per-scalar statistics of the training split;
- `denoiser`: the pre-LN transformer (nanoGPT-style) that predicts x0 / eps / v;
- `schedule`: our small API over diffusers' DDPM/DDIM schedulers (noising, DDIM/DDPM loops, SDEdit,
  inpainting callback);
- `sampler`: a denoiser + schedule + normalization that returns flat weight vectors (CFG included);
- `export`: the model folder (safetensors + JSON, no pickle) and `load_model`;
- `module`, `datamodule`, `callbacks`, `evaluate`, `train`: Lightning training and its validation.
"""
