"""Training mechanics: schedules, parameter groups, clipping, samplers, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sbirbench.data.items import EpochSampler, ImageItems, collate, make_loader
from sbirbench.data.transforms import train_transform
from sbirbench.interfaces import InputSpec, ParamGroup
from sbirbench.runtime.optim import clip_gradients, param_groups, set_step_values
from sbirbench.schedule import cosine
from sbirbench.testing import ToyConfig, ToyDataset


def dino_cosine_scheduler(base, final, epochs, per_epoch, warmup_epochs=0, start_warmup=0):
    """DINO's utils.cosine_scheduler, as a reference."""
    warmup = np.array([])
    warmup_iters = warmup_epochs * per_epoch
    if warmup_epochs > 0:
        warmup = np.linspace(start_warmup, base, warmup_iters)
    iters = np.arange(epochs * per_epoch - warmup_iters)
    schedule = final + 0.5 * (base - final) * (1 + np.cos(np.pi * iters / len(iters)))
    return np.concatenate((warmup, schedule))


@pytest.mark.parametrize(("epochs", "per_epoch", "warmup"), [(3, 4, 1), (5, 7, 0), (10, 3, 2)])
def test_cosine_matches_dinos_scheduler(epochs, per_epoch, warmup):
    reference = dino_cosine_scheduler(1e-3, 1e-6, epochs, per_epoch, warmup)
    ours = [
        cosine(s, epochs * per_epoch, 1e-3, 1e-6, warmup * per_epoch)
        for s in range(epochs * per_epoch)
    ]
    np.testing.assert_allclose(ours, reference, rtol=1e-12)


def test_param_groups_exempt_biases_and_norms_and_carry_multipliers():
    backbone = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    head = nn.Linear(4, 2)
    groups = param_groups(
        {"backbone": backbone, "head": head}, [ParamGroup("backbone", [backbone], 0.1)]
    )
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"backbone", "backbone/no_decay", "rest", "rest/no_decay"}
    assert by_name["backbone"]["params"] == [backbone[0].weight]
    assert len(by_name["backbone/no_decay"]["params"]) == 3  # bias, norm weight, norm bias
    assert by_name["backbone"]["lr_mult"] == 0.1 and by_name["rest"]["lr_mult"] == 1.0
    optimizer = torch.optim.AdamW(groups)
    set_step_values(optimizer, 1e-3, 0.05)
    values = {g["name"]: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups}
    assert values["backbone"] == pytest.approx((1e-4, 0.05))
    assert values["backbone/no_decay"] == pytest.approx((1e-4, 0.0))
    assert values["rest"] == pytest.approx((1e-3, 0.05))


def test_per_parameter_and_global_clipping():
    a, b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2))
    a.grad, b.grad = torch.tensor([3.0, 4.0, 0.0]), torch.tensor([0.3, 0.4])
    clip_gradients([a, b], 1.0, "param")
    assert torch.linalg.vector_norm(a.grad).item() == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(b.grad, torch.tensor([0.3, 0.4]))  # under the limit: untouched
    a.grad, b.grad = torch.tensor([3.0, 4.0, 0.0]), torch.tensor([0.0, 0.0])
    clip_gradients([a, b], 1.0, "global")
    assert torch.linalg.vector_norm(a.grad).item() == pytest.approx(1.0, rel=1e-5)


def test_epoch_sampler_yields_epoch_index_pairs_and_resumes_mid_epoch():
    data = list(range(20))
    full = EpochSampler(data, num_replicas=2, rank=1, seed=3)
    full.begin(epoch=4)
    pairs = list(full)
    assert all(epoch == 4 for epoch, _ in pairs) and len(pairs) == 10
    tail = EpochSampler(data, num_replicas=2, rank=1, seed=3)
    tail.begin(epoch=4, start=6)
    assert list(tail) == pairs[6:] and len(tail) == 4
    full.begin(epoch=5)
    assert [i for _, i in full] != [i for _, i in pairs]  # reshuffled per epoch


def test_augmentation_depends_only_on_seed_epoch_and_index():
    dataset = ToyDataset(ToyConfig())
    transform = train_transform("dino", InputSpec(32, (0.5,) * 3, (0.5,) * 3))
    items = ImageItems(dataset, dataset.items("train", "photo"), "photo", transform, seed=7)
    torch.manual_seed(123)
    first = items[(2, 5)].image
    torch.manual_seed(999)  # the caller's generator state does not matter ...
    assert torch.equal(items[(2, 5)].image, first)
    assert not torch.equal(items[(3, 5)].image, first)  # ... the epoch does
    state = torch.get_rng_state()
    items[(2, 6)]
    assert torch.equal(torch.get_rng_state(), state)  # and it is left untouched

    batches = []
    for workers in (0, 2):
        sampler = EpochSampler(items, num_replicas=1, rank=0, seed=1)
        sampler.begin(0)
        loader = make_loader(items, sampler, 4, workers=workers, pin_memory=False)
        batches.append(next(iter(loader)))
    assert torch.equal(batches[0].images, batches[1].images)


class FlakyToy(ToyDataset):
    def open(self, ref, modality):
        if ref == 3:
            raise OSError("cannot identify image file")
        return super().open(ref, modality)


def test_unreadable_training_images_are_replaced_and_reported():
    dataset = FlakyToy(ToyConfig())
    transform = train_transform("none", InputSpec(32, (0.5,) * 3, (0.5,) * 3))
    items = ImageItems(dataset, dataset.items("train", "photo"), "photo", transform)
    sample = items[(0, 3)]
    assert sample.index == 4 and sample.unreadable == ("3",)
    batch = collate([items[(0, i)] for i in range(2, 6)])
    assert batch.images.shape[0] == 4 and batch.unreadable == ("3",)
    strict = FlakyToy(ToyConfig(on_corrupt="error"))
    strict_items = ImageItems(strict, strict.items("train", "photo"), "photo", transform)
    with pytest.raises(Exception, match="unreadable image 3"):
        strict_items[(0, 3)]
