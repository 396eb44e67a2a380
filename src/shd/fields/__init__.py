"""Fields layer: per-shape occupancy fields (mixture of part experts) fitted in batches.

Public API:
- configs: `FieldConfig`, `OverfitConfig`, `FIELD_PRESETS` ("moe_equal", "single");
- evaluation: `expert_logits(params, points, config)`, `combine(logits, config)`, `FieldModule`;
- layout: `make_layout`, `flatten`, `unflatten`, `param_count`;
- fitting: `fit_sample_set(sample_dir, out_dir, config, device, shard, progress, fabric)`,
  `fit_with_fabric(...)`;
- weight sets: `WeightSet`, `load_field(dir, shape_id)`, `load_params(dir, shape_ids)`;
- quality: `aggregate(records)`.
"""

from shd.fields.config import FIELD_PRESETS, FieldConfig, OverfitConfig
from shd.fields.fit import fit_sample_set, fit_with_fabric
from shd.fields.layout import Block, Layout, flatten, make_layout, param_count, unflatten
from shd.fields.moe import FieldModule, combine, expert_logits, init_params, shape_losses
from shd.fields.quality import aggregate, heldout_iou
from shd.fields.weight_set import WeightSet, load_field, load_params

__all__ = [
    "FIELD_PRESETS",
    "Block",
    "FieldConfig",
    "FieldModule",
    "Layout",
    "OverfitConfig",
    "WeightSet",
    "aggregate",
    "combine",
    "expert_logits",
    "fit_sample_set",
    "fit_with_fabric",
    "flatten",
    "heldout_iou",
    "init_params",
    "load_field",
    "load_params",
    "make_layout",
    "param_count",
    "shape_losses",
    "unflatten",
]
