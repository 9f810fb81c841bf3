"""``dsn``: Domain-Smoothing Network (Wang et al., IJCAI 2021).

DSN is SAKE (``methods/sake.py``) plus a supervised contrastive loss across modalities:
every image gets two more views (flip, colour jitter, grayscale); the normalised
embeddings of all views attract those of the same class, sketch or photo, and repel the
rest (docs/methods/dsn.md):

    f_a = x_a / |x_a|  over the 2N views,  P(a) = {p != a : y_p = y_a}
    L_con = mean_a -1/|P(a)| sum_{p in P(a)} log softmax_{k != a}(f_a.f_k / tau)_p
    L = ce_weight * L_CE + kd_weight * L_SAKE + contrastive_weight * L_con

The released code also computes a sketch memory-bank term, but on detached features: it
has no gradient and changes nothing the network learns, so it is left out here (the
spec says why). Written against the public plugin contract, reusing SAKE's parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sbirbench.interfaces import Batch

from .sake import SAKE, SAKEConfig


@dataclass(frozen=True)
class DSNConfig(SAKEConfig):
    """SAKE's options, a 64-d embedding (the code's), and the contrastive term's weight,
    temperature and view augmentation."""

    embed_dim: int = 64
    contrastive_weight: float = 0.1
    temperature: float = 0.07
    jitter: float = 0.4
    jitter_p: float = 0.8
    grayscale_p: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature}: must be positive")
        if self.contrastive_weight < 0:
            raise ValueError(f"contrastive_weight={self.contrastive_weight}: must not be negative")
        for name in ("jitter", "jitter_p", "grayscale_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be between 0 and 1")


def supervised_contrastive(
    features: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Khosla et al.'s loss over L2-normalised ``features``: for each anchor with at least
    one positive, minus the mean log-probability of its positives among all other rows."""
    f = F.normalize(features.float(), dim=-1)
    logits = f @ f.T / temperature
    self_mask = torch.eye(len(f), dtype=torch.bool, device=f.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positives.sum(1)
    has = counts > 0
    mean_pos = (log_prob.masked_fill(~positives, 0.0)).sum(1)[has] / counts[has]
    return -mean_pos.mean() if bool(has.any()) else features.sum() * 0.0


def contrastive_view(
    images: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    jitter: float,
    jitter_p: float,
    grayscale_p: float,
) -> torch.Tensor:
    """One random view of a normalised batch, per image: horizontal flip (p 0.5),
    brightness, contrast and saturation jitter by factors in [1 - j, 1 + j] (p
    ``jitter_p``; hue is not jittered), grayscale (p ``grayscale_p``); then normalised
    again. Draws come from torch's generator, which checkpoints save and restore."""
    n, device = len(images), images.device

    def chance(p: float) -> torch.Tensor:
        return (torch.rand(n, device=device) < p)[:, None, None, None]

    def factor() -> torch.Tensor:
        return torch.empty(n, 1, 1, 1, device=device).uniform_(1 - jitter, 1 + jitter)

    x = images.float() * std + mean  # back to [0, 1]
    x = torch.where(chance(0.5), x.flip(-1), x)
    jittered = (x * factor()).clamp(0, 1)  # brightness
    level = _gray(jittered).mean(dim=(2, 3), keepdim=True)  # torchvision's pivot
    jittered = ((jittered - level) * factor() + level).clamp(0, 1)  # contrast
    gray = _gray(jittered)
    jittered = ((jittered - gray) * factor() + gray).clamp(0, 1)  # saturation
    x = torch.where(chance(jitter_p), jittered, x)
    x = torch.where(chance(grayscale_p), _gray(x).expand_as(x), x)
    return ((x - mean) / std).to(images.dtype)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma, ``(B, 1, H, W)``, as torchvision's grayscale."""
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]


class DSN(SAKE):
    """SAKE's two terms plus the supervised contrastive loss over two extra views."""

    Config = DSNConfig
    description = "Domain-Smoothing Network (IJCAI 2021): SAKE plus cross-modal contrast"

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Base views and two contrastive views of both modalities in one forward pass."""
        c = self.config
        base, labels, keep = self.joined(batch)
        mean, std = self._normalisation(base.device)
        views = [
            contrastive_view(base, mean, std, c.jitter, c.jitter_p, c.grayscale_p) for _ in range(2)
        ]
        out = self.net(torch.cat([base, *views]))
        n = len(base)
        ce, kd = self.sake_terms({k: v[:n] for k, v in out.items()}, base, labels, keep)
        con = supervised_contrastive(out["embedding"][n:], labels.repeat(2), c.temperature)
        loss = c.ce_weight * ce + c.kd_weight * kd + c.contrastive_weight * con
        return {"loss": loss, "ce": ce, "kd": kd, "con": con}

    def _normalisation(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The input mean and std as ``(1, 3, 1, 1)`` tensors (read once)."""
        if not hasattr(self, "_norm"):
            spec = self.input_spec()
            self._norm = tuple(torch.tensor(v).view(1, 3, 1, 1) for v in (spec.mean, spec.std))
        mean, std = self._norm
        return mean.to(device), std.to(device)
