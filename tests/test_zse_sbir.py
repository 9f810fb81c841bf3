"""ZSE-SBIR (docs/methods/zse-sbir.md): each module and loss term against plain loops
written from the spec, the in-batch pairing, a whole step, and runs with both rankings."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from sbirbench.backbones.vit_tokens import VitTokensTiny, VitTokensTinyConfig
from sbirbench.errors import UserError
from sbirbench.interfaces import BackboneSpec, Batch, MethodSetup
from sbirbench.methods.losses import pair_in_batch
from sbirbench.methods.zse_parts import (
    CrossAttention,
    PostNorm,
    RelationNetwork,
    relation_term,
    triplet_term,
)
from sbirbench.methods.zse_sbir import ZSESBIR, ZSESBIRConfig
from sbirbench.results.leaderboard import build_boards
from sbirbench.results.paired import compare_rows
from sbirbench.results.result import find_results

from .cli_helpers import SMALL, invoke, only_run
from .test_pretrained_weights import needs_weights

TINY_VIT = VitTokensTinyConfig(
    img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, token_num=1,
    token_names=("retrieval",), patch_tokens=True,
)  # fmt: skip


def test_the_post_norm_uses_the_unbiased_std_with_eps_outside_the_root():
    torch.manual_seed(0)
    norm = PostNorm(5)
    norm.requires_grad_(False)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
        norm.bias.uniform_(-1, 1)
    x = torch.randn(3, 5)
    with torch.no_grad():
        out = norm(x)
    for i in range(3):
        row = [float(v) for v in x[i]]
        mean = sum(row) / 5
        std = math.sqrt(sum((v - mean) ** 2 for v in row) / 4)
        for j in range(5):
            want = float(norm.weight[j]) * (row[j] - mean) / (std + 1e-6) + float(norm.bias[j])
            assert float(out[i, j]) == pytest.approx(want, rel=1e-5, abs=1e-6)


def _attention_loop(layer: CrossAttention, query, key, value):
    """Multi-head attention of one sequence, head by head and token by token."""
    mha = layer.attention
    dim, heads = mha.embed_dim, mha.num_heads
    head = dim // heads
    w, b = mha.in_proj_weight, mha.in_proj_bias
    q = query @ w[:dim].T + b[:dim]
    k = key @ w[dim : 2 * dim].T + b[dim : 2 * dim]
    v = value @ w[2 * dim :].T + b[2 * dim :]
    out = torch.zeros(len(query), dim)
    for h in range(heads):
        cols = slice(h * head, (h + 1) * head)
        for i in range(len(query)):
            logits = [float(q[i, cols] @ k[j, cols]) / math.sqrt(head) for j in range(len(key))]
            top = max(logits)
            weights = [math.exp(x - top) for x in logits]
            total = sum(weights)
            for j in range(len(key)):
                out[i, cols] += weights[j] / total * v[j, cols]
    return out @ mha.out_proj.weight.T + mha.out_proj.bias


@pytest.mark.parametrize("swap", ["key", "query"])
def test_cross_attention_is_the_releases_post_norm_layer(swap):
    torch.manual_seed(1)
    layer = CrossAttention(8, 2, 12, dropout=0.0, swap=swap).eval()
    own, other = torch.randn(1, 5, 8), torch.randn(1, 5, 8)
    with torch.no_grad():
        out = layer(own, other)[0]
        query, key = (own[0], other[0]) if swap == "key" else (other[0], own[0])
        x = layer.norm1(own[0] + _attention_loop(layer, query, key, own[0]))
        hidden = torch.relu(x @ layer.ffn[0].weight.T + layer.ffn[0].bias)
        want = layer.norm2(x + hidden @ layer.ffn[3].weight.T + layer.ffn[3].bias)
    assert torch.allclose(out, want, atol=1e-5)


@pytest.mark.parametrize("layout", ["grid", "release"])
def test_relation_cells_are_the_2x2_convolution_of_the_token_grid(layout):
    torch.manual_seed(2)
    side, dim = 4, 3
    net = RelationNetwork(dim, side, out_dim=2, dropout=0.0, layout=layout)
    patches = torch.randn(1, side * side, dim)
    flat = patches[0].reshape(-1)  # the release reads this memory as (dim, side, side)

    def pixel(channel: int, row: int, col: int) -> float:
        if layout == "grid":
            return float(patches[0, row * side + col, channel])
        return float(flat[channel * side * side + row * side + col])

    with torch.no_grad():
        cells = net.cells(patches)[0]
    w, b = net.conv.weight.detach(), net.conv.bias.detach()
    for cell in range(4):
        r0, c0 = 2 * (cell // 2), 2 * (cell % 2)
        for o in range(2):
            want = float(b[o]) + sum(
                float(w[o, ch, dr, dc]) * pixel(ch, r0 + dr, c0 + dc)
                for ch in range(dim)
                for dr in range(2)
                for dc in range(2)
            )
            assert float(cells[cell, o]) == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_the_relation_kernel_is_sketch_major_cosines_and_the_score_a_sigmoid():
    torch.manual_seed(3)
    net = RelationNetwork(4, 4, out_dim=3, dropout=0.0, layout="grid").eval()
    net.requires_grad_(False)
    sketch, photo = torch.randn(2, 16, 4), torch.randn(2, 16, 4)
    kernel = net.kernel(sketch, photo)
    u, v = net.cells(sketch), net.cells(photo)
    for p in range(2):
        for a in range(4):
            for b in range(4):
                cos = float(u[p, a] @ v[p, b]) / float(u[p, a].norm() * v[p, b].norm())
                assert float(kernel[p, a * 4 + b]) == pytest.approx(cos, rel=1e-5, abs=1e-6)
    score = net(sketch, photo)
    assert score.shape == (2,)
    assert torch.allclose(score, torch.sigmoid(net.mlp(kernel))[:, 0])
    assert [m.in_features for m in net.mlp if isinstance(m, torch.nn.Linear)] == [16, 28, 4]


def test_pairing_picks_the_own_position_then_the_next_photo_of_another_class():
    sketch_labels = torch.tensor([0, 1, 2, 1, 5])
    photo_labels = torch.tensor([0, 2, 2, 1, 1])
    positive, negative, valid = pair_in_batch(sketch_labels, photo_labels)
    m = len(photo_labels)
    for i, label in enumerate(sketch_labels.tolist()):
        same = [j for j in range(m) if photo_labels[j] == label]
        other = [(i + 1 + step) % m for step in range(m)]
        other = [j for j in other if photo_labels[j] != label]
        assert bool(valid[i]) == bool(same and other)
        if same:
            assert int(positive[i]) == (i if i in same else same[0])
            assert int(negative[i]) == other[0]
    assert valid.tolist() == [True, True, True, True, False]


def test_the_triplet_and_relation_terms_are_the_plain_sums():
    torch.manual_seed(4)
    a, p, n = torch.randn(6, 5), torch.randn(6, 5), torch.randn(6, 5)
    want = (
        sum(
            max(0.0, float((a[i] - p[i] + 1e-6).norm()) - float((a[i] - n[i] + 1e-6).norm()) + 1.0)
            for i in range(6)
        )
        / 6
    )
    assert float(triplet_term(a, p, n, 1.0)) == pytest.approx(want, rel=1e-5)
    pos, neg = torch.rand(4), torch.rand(4)
    want = (sum((float(x) - 0.99) ** 2 for x in pos) + sum((float(x) - 0.01) ** 2 for x in neg)) / 8
    assert float(relation_term(pos, neg, (0.01, 0.99))) == pytest.approx(want, rel=1e-5)


def tiny_method(**changes) -> ZSESBIR:
    config = ZSESBIRConfig(**{"heads": 4, "ffn_dim": 16, "rn_dim": 8, "dropout": 0.0, **changes})
    return ZSESBIR(config, MethodSetup(5, BackboneSpec("tiny", VitTokensTiny, TINY_VIT)))


def test_a_step_is_the_weighted_terms_of_the_in_batch_pairs():
    torch.manual_seed(5)
    method = tiny_method()
    sketches, photos = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    labels = torch.tensor([0, 1, 2, 3])
    out = method.training_step(Batch(photos, labels, sketches, labels))
    with torch.no_grad():
        s_seq, p_seq = method.sequence(sketches), method.sequence(photos)
        assert s_seq.shape == (4, 17, 32)
        negative = [
            1,
            2,
            3,
            0,
        ]  # each sketch's photo is its own position; the next is another class
        s_pos, p_pos = method.cross(s_seq, p_seq)
        s_neg, p_neg = method.cross(s_seq, p_seq[negative])
        tri = triplet_term(s_pos[:, 0], p_pos[:, 0], p_neg[:, 0], 1.0)
        r_pos = method.relation_net(s_pos[:, 1:], p_pos[:, 1:])
        r_neg = method.relation_net(s_neg[:, 1:], p_neg[:, 1:])
        rn = relation_term(r_pos, r_neg, (0.01, 0.99))
        assert torch.allclose(method.relation(s_seq, p_seq), r_pos, atol=1e-6)
    got = {k: float(v.detach()) for k, v in out.items()}
    assert got["tri"] == pytest.approx(float(tri), rel=1e-5)
    assert got["rn"] == pytest.approx(float(rn), rel=1e-5)
    assert got["loss"] == pytest.approx(float(2 * tri + 4 * rn), rel=1e-5)
    out["loss"].backward()
    for name, module in method.net.items():  # every module learns from the step
        assert any(
            p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters()
        ), name
    retrieval = method.embed(sketches, "sketch")
    assert torch.allclose(retrieval.norm(dim=1), torch.ones(4))


def test_the_negative_relation_pair_takes_the_other_sketch_of_the_class():
    """Sketches in same-class pairs (0, 1), (2, 3): s- of each is its partner, as the
    release draws a second sketch of the anchor's class; ``anchor`` keeps s+ itself."""
    torch.manual_seed(6)
    sketches, photos = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    labels = torch.tensor([0, 0, 1, 1])
    for mode, second in (("partner", [1, 0, 3, 2]), ("anchor", [0, 1, 2, 3])):
        method = tiny_method(negative_sketch=mode)
        method.net.eval()  # no dropout: the step and the loop see the same network
        out = method.training_step(Batch(photos, labels, sketches, labels))
        _, negative, _ = pair_in_batch(labels, labels)
        with torch.no_grad():
            s_seq, p_seq = method.sequence(sketches), method.sequence(photos)
            s_neg, p_neg = method.cross(s_seq[second], p_seq[negative])
            s_pos, p_pos = method.cross(s_seq, p_seq)
            r_neg = method.relation_net(s_neg[:, 1:], p_neg[:, 1:])
            r_pos = method.relation_net(s_pos[:, 1:], p_pos[:, 1:])
            tri = triplet_term(s_pos[:, 0], p_pos[:, 0], p_neg[:, 0], 1.0)
        assert float(out["rn"].detach()) == pytest.approx(
            float(relation_term(r_pos, r_neg, (0.01, 0.99))), rel=1e-5
        ), mode
        assert float(out["tri"].detach()) == pytest.approx(float(tri), rel=1e-5), mode
        assert method.stages()[0].pair_sketches == (mode == "partner")


@needs_weights
def test_pairs_need_two_images_a_micro_batch(tmp_path, capsys):
    outcome = invoke(capsys, "run", "zse_sbir", "--dataset", "synthetic", "--preset", "cpu-smoke",
                     "--epochs", "1", *SMALL, "--set", "accum_steps=8",
                     "--out", str(tmp_path))  # fmt: skip
    assert outcome.code == 2
    assert "needs at least 2 images a micro-batch" in outcome.err
    assert "Traceback" not in outcome.err


def test_the_two_cross_attention_layers_start_equal_and_bad_backbones_are_one_line():
    method = tiny_method()
    for (name, a), b in zip(
        method.ca_sketch.state_dict().items(), method.ca_photo.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    without_tokens = VitTokensTinyConfig(
        img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2
    )
    with pytest.raises(UserError, match="no feature 'tokens'.*patch_tokens=true"):
        ZSESBIR(
            ZSESBIRConfig(token_feature="tokens"),
            MethodSetup(5, BackboneSpec("t", VitTokensTiny, without_tokens)),
        )
    with pytest.raises(UserError, match="heads=3 does not divide the token width 32"):
        tiny_method(heads=3)
    one_cell = dataclasses.replace(TINY_VIT, img_size=8)
    with pytest.raises(UserError, match="1x1 token grid is too small"):
        ZSESBIR(ZSESBIRConfig(heads=4), MethodSetup(5, BackboneSpec("t", VitTokensTiny, one_cell)))


@needs_weights
def test_zse_sbir_runs_with_both_rankings_recorded_and_shown(tmp_path, capsys):
    outcome = invoke(capsys, "run", "zse_sbir", "--dataset", "synthetic", "--preset", "cpu-smoke",
                     "--epochs", "1", *SMALL, "--set", "rerank_k=5",
                     "--set", "backbone.img_size=64", "--out", str(tmp_path))  # fmt: skip
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path, method="zse_sbir")
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert set(history[0]["losses"]) == {"loss", "tri", "rn"}
    result = json.loads((run / "result.json").read_text())
    assert result["rerank"]["k"] == 5
    assert result["rerank"]["pairs"] == 5 * result["queries"]
    assert set(result["reranked_metrics"]) == set(result["metrics"])
    # Re-ordering the top 5 leaves prec@K for K >= 5 as it was.
    assert result["reranked_metrics"]["prec@100"] == pytest.approx(result["metrics"]["prec@100"])
    board = invoke(capsys, "leaderboard", "--runs", str(tmp_path), "--format", "github")
    assert board.code == 0, board.err
    assert "(re-ranked, top 5)" in board.out
    # Paired tests read each ranking's own per-query values.
    per_query = json.loads((run / "per_query.json").read_text())
    metric = per_query["metric"]
    for key, source in (("values", "metrics"), ("reranked_values", "reranked_metrics")):
        values = [v for v in per_query[key] if v is not None]
        assert sum(values) / len(values) == pytest.approx(result[source][metric], abs=1e-6)
    found, _ = find_results(tmp_path, evaluations=False)
    (boards,) = build_boards([r for _, r in found], None)
    (first,) = (r.label for r in boards.rows if r.measured and not r.reranked)
    (second,) = (r.label for r in boards.rows if r.measured and r.reranked)
    compared = compare_rows(boards, second, first)
    want = result["reranked_metrics"][metric] - result["metrics"][metric]
    assert compared.test.difference == pytest.approx(want, abs=1e-6)
