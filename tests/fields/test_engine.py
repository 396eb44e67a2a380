import torch

from shd.fields import engine
from shd.fields.engine import check, draw_batch, fit_stream, new_active, train_step
from shd.fields.layout import make_layout, unflatten
from shd.fields.moe import expert_logits, init_params, shape_losses
from shd.fields.schedule import plateau_update, scheduled_lr
from shd.fields.synthetic import sample_shapes

CPU = torch.device("cpu")


def _data(n_shapes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    d = sample_shapes(
        "airplane",
        n_shapes,
        seed=seed,
        n_near=200,
        n_uniform=200,
        n_eval_near=10,
        n_eval_uniform=10,
        n_surface=8,
    )
    return {k: d[k] for k in engine.TRAIN_KEYS}


def _rows(d: dict, i: int) -> dict:
    return {k: v[i : i + 1] for k, v in d.items()}


def test_batched_training_equals_training_each_shape_alone(tiny):
    cfg = tiny(schedule="cosine", max_steps=20, warmup_steps=4)
    layout, init, data = make_layout(cfg.field), init_params(cfg.field, 0), _data(3)
    ids = ["a", "b", "c"]
    batched = new_active(ids, data, init, cfg, CPU)
    alone = [new_active([s], _rows(data, i), init, cfg, CPU) for i, s in enumerate(ids)]
    for _ in range(15):
        x, occ, lab = draw_batch(batched, 64)
        train_step(batched, x, occ, lab, layout, cfg)
        for i, a in enumerate(alone):
            xa, occa, laba = draw_batch(a, 64)  # per-shape RNG: same points alone as in the batch
            assert torch.equal(xa[0], x[i]) and torch.equal(laba[0], lab[i])
            train_step(a, xa, occa, laba, layout, cfg)
    for i, a in enumerate(alone):
        assert torch.allclose(batched.flat[i], a.flat[0], rtol=1e-5, atol=1e-6)
        assert torch.equal(batched.step[i], a.step[0])
    assert not torch.allclose(batched.flat[0], batched.flat[1])


def test_batched_adam_matches_torch_adam(tiny):
    cfg = tiny(schedule="constant", lr=3e-3)
    layout, init, data = make_layout(cfg.field), init_params(cfg.field, 1), _data(1)
    ours = new_active(["a"], data, init, cfg, CPU)
    ref = init.clone().reshape(1, -1).requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=3e-3)
    for _ in range(10):
        x, occ, lab = draw_batch(ours, 64)
        train_step(ours, x, occ, lab, layout, cfg)
        opt.zero_grad()
        logits = expert_logits(unflatten(ref, layout), x, cfg.field)
        shape_losses(logits, occ, lab, cfg.field).sum().backward()
        opt.step()
    assert torch.allclose(ours.flat, ref.detach(), rtol=1e-5, atol=1e-6)


def test_a_diverging_shape_does_not_touch_the_others(tiny):
    cfg = tiny()
    layout, init, data = make_layout(cfg.field), init_params(cfg.field, 0), _data(3)
    poisoned = {k: v.clone() for k, v in data.items()}
    poisoned["points"][1, :50] = float("nan")
    clean, bad = (new_active(["a", "b", "c"], d, init, cfg, CPU) for d in (data, poisoned))
    for _ in range(cfg.check_every):
        for a in (clean, bad):
            train_step(a, *draw_batch(a, 64), layout, cfg)
    assert torch.allclose(clean.flat[[0, 2]], bad.flat[[0, 2]], rtol=0, atol=1e-7)
    keep, finished = check(bad, cfg, cfg.check_every)
    assert keep.tolist() == [0, 2]
    assert [(r.shape_id, r.status) for r in finished] == [("b", "failed")]
    assert "non-finite" in finished[0].reason and finished[0].loss is None


def test_per_shape_schedules(tiny):
    cfg = tiny(schedule="cosine", lr=1e-2, min_lr=1e-4, warmup_steps=10, max_steps=110)
    lr = scheduled_lr(torch.tensor([0, 9, 10, 60, 110, 500]), torch.zeros(6), cfg)
    assert torch.allclose(lr, torch.tensor([1e-3, 1e-2, 1e-2, (1e-2 + 1e-4) / 2, 1e-4, 1e-4]), rtol=1e-4)
    one = tiny(schedule="onecycle", lr=1e-2, max_steps=100)
    lr = scheduled_lr(torch.tensor([0, 30, 100]), torch.zeros(3), one)
    assert torch.allclose(lr, torch.tensor([4e-4, 1e-2, 1e-6]), rtol=1e-3)


def test_plateau_bookkeeping_is_per_shape(tiny):
    cfg = tiny(schedule="plateau", lr=1e-2, plateau_patience=1, plateau_factor=0.5, plateau_threshold=0.01)
    best, bad, flat = torch.full((2,), float("inf")), torch.zeros(2, dtype=torch.long), torch.zeros(2).long()
    lr = torch.full((2,), 1e-2)
    losses = [(1.0, 1.0), (0.5, 1.0), (0.25, 1.0), (0.1, 0.999)]  # shape 0 improves, shape 1 is flat
    for loss in losses:
        best, bad, flat, lr = plateau_update(torch.tensor(loss), best, bad, flat, lr, cfg)
    assert lr[0] == 1e-2 and flat[0] == 0
    assert torch.isclose(lr[1], torch.tensor(5e-3)) and flat[1] == 3 and best[1] == 1.0
    assert torch.equal(scheduled_lr(torch.tensor([5, 7]), lr, cfg), lr)


def test_streaming_is_independent_of_batch_size_and_compacts(monkeypatch, tiny):
    cfg = tiny(schedule="plateau", max_steps=60, stop_patience=1, plateau_threshold=0.2)
    init, data = init_params(cfg.field, 0), _data(5)
    data["points"][4, :] = float("nan")  # s4 fails at its first bookkeeping and leaves the batch
    ids = [f"s{i}" for i in range(5)]
    load = lambda b: {k: v[[ids.index(s) for s in b]] for k, v in data.items()}  # noqa: E731
    sizes: list[int] = []
    real = engine.train_step

    def spy(active, *args):
        sizes.append(len(active))
        return real(active, *args)

    runs = {}
    for capacity in (5, 2):
        got: list = []
        monkeypatch.setattr(engine, "train_step", spy)
        fit_stream(ids, load, init, cfg, CPU, capacity, got.extend)
        assert sorted(r.shape_id for r in got) == ids and max(sizes) == capacity
        assert capacity == 2 or min(sizes) < capacity  # finished shapes left the batch
        runs[capacity] = {r.shape_id: r for r in got}
        sizes.clear()
    assert runs[5]["s4"].status == runs[2]["s4"].status == "failed"
    for s in ids[:4]:
        a, b = runs[5][s], runs[2][s]
        assert a.steps == b.steps and a.reason == b.reason
        assert torch.allclose(a.params, b.params, rtol=1e-5, atol=1e-6)
    assert any(r.reason == "plateau" and r.steps < cfg.max_steps for r in runs[5].values())


def test_no_early_stop_while_the_schedule_rises(tiny):
    cfg = tiny(schedule="onecycle", max_steps=100)  # peak at step 30
    best, bad, flat = torch.tensor([float("inf")]), torch.zeros(1).long(), torch.zeros(1).long()
    lr = torch.full((1,), cfg.lr)
    for step, loss in ((10, 1.0), (20, 1.5), (30, 2.0), (40, 2.0), (50, 2.0)):  # worse while rising
        best, bad, flat, lr = plateau_update(
            torch.tensor([loss]), best, bad, flat, lr, cfg, torch.tensor([step])
        )
        assert flat.item() == max(0, step // 10 - 3)
