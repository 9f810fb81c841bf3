"""Evaluation plumbing: gather by index, the feature cache, unreadable test images."""

from __future__ import annotations

import pytest
import torch

from sbirbench.interfaces import BackboneSpec, MethodSetup
from sbirbench.methods.pretrained import Pretrained, PretrainedConfig
from sbirbench.pipeline import embedding as embedding_module
from sbirbench.pipeline.evaluation import evaluate
from sbirbench.pipeline.resolve import Protocol
from sbirbench.runtime.distributed import Context, gather_by_index
from sbirbench.testing import ToyConfig, ToyDataset

from .distributed_helpers import run_workers


def test_gather_by_index_with_uneven_shards(tmp_path):
    # 7 items over 2 ranks: shards of 4 and 3; rank 1 also lost item 5 (unreadable).
    body = """
    import torch
    from sbirbench.data.items import shard
    from sbirbench.runtime.distributed import Context, gather_by_index
    ctx = Context(RANK, WORLD)
    mine = [i for i in shard(7, RANK, WORLD) if i != 5]
    feats = torch.tensor([[float(i), float(i) * 10] for i in mine])
    full, filled = gather_by_index(feats, torch.tensor(mine), 7, ctx)
    emit({"full": full.tolist(), "filled": filled.tolist()})
    """
    for payload in run_workers(body, tmp_path):
        assert payload["filled"] == [True] * 5 + [False, True]
        expected = [[float(i), float(i) * 10] for i in range(7)]
        expected[5] = [0.0, 0.0]
        assert payload["full"] == expected


def test_gather_by_index_single_process():
    full, filled = gather_by_index(torch.ones(2, 3), torch.tensor([2, 0]), 4, Context())
    assert filled.tolist() == [True, False, True, False]
    assert full.sum().item() == 6


class BrokenToy(ToyDataset):
    """Test photo 3 cannot be read."""

    def open(self, ref, modality):
        if modality == "photo" and ref == self.items("test", "photo")[3][0]:
            raise OSError("truncated file")
        return super().open(ref, modality)


def pretrained_on(dataset_cls):
    from sbirbench.backbones.timm_adapter import TimmTiny

    dataset = dataset_cls(ToyConfig(image_size=32))
    spec = BackboneSpec("timm_tiny", TimmTiny, TimmTiny.Config(img_size=32))
    torch.manual_seed(0)
    return dataset, Pretrained(PretrainedConfig(), MethodSetup(4, spec))


def protocol(*metrics: str, hash_bits: int | None = None) -> Protocol:
    return Protocol("toy", None, metrics or ("map@all",), hash_bits=hash_bits)


def test_unreadable_test_images_are_dropped_and_counted():
    dataset, method = pretrained_on(BrokenToy)
    result = evaluate(method, dataset, protocol(), context=Context()).fields()
    assert result["unreadable_images"] == 1 and result["gallery"] == 15
    assert result["queries"] == 16


def test_features_are_cached_by_key(monkeypatch):
    dataset, method = pretrained_on(ToyDataset)
    first = evaluate(method, dataset, protocol(), context=Context(), cache_key="k1")

    def no_forward(*args, **kwargs):
        raise AssertionError("features were recomputed")

    monkeypatch.setattr(embedding_module, "_forward", no_forward)
    again = evaluate(method, dataset, protocol(), context=Context(), cache_key="k1")
    assert again.metrics == first.metrics
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate(method, dataset, protocol(), context=Context(), cache_key="k2")
    with pytest.raises(AssertionError, match="recomputed"):  # other numerics, other entry
        evaluate(method, dataset, protocol(), context=Context(), cache_key="k1", precision="bf16")


def test_hash_bits_adds_binary_results():
    dataset, method = pretrained_on(ToyDataset)
    result = evaluate(
        method, dataset, protocol("map@all", "prec@5", hash_bits=16), context=Context()
    )
    assert set(result.hashed_metrics) == {"map@all", "prec@5"}
    assert result.hash["bits"] == 16
