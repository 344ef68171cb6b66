"""Reusable training losses.

Segmentation (occluder masks): soft Dice, BCE + Dice. Every segmentation loss takes raw logits
(N x 1 x H x W) and float 0/1 targets of the same shape.

Inpainting: images are N x 3 x H x W in [-1, 1], masks N x 1 x H x W with 1 = hole.
:func:`masked_l1` (hole and valid terms weighted apart), :func:`ssim_loss`, :class:`FeatureLoss`
(perceptual and style/Gram losses on ImageNet VGG16 or AlexNet features, the real weights LPIPS uses),
:func:`tv_loss`, and the adversarial pieces: :func:`d_hinge_loss` / :func:`g_hinge_loss`,
:func:`d_lsgan_loss` / :func:`g_lsgan_loss` and :func:`feature_matching_loss`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    return target.to(logits.dtype)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss on sigmoid probabilities: ``1 - (2 |P T| + eps) / (|P| + |T| + eps)`` per
    sample (sums over all non-batch dimensions), averaged over the batch. ``eps`` smooths it and
    makes an empty target predicted empty a loss of 0."""
    target = _check(logits, target)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    inter = (p * t).sum(1)
    dice = (2 * inter + eps) / (p.sum(1) + t.sum(1) + eps)
    return (1 - dice).mean()


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, bce_weight: float = 1.0,
                  dice_weight: float = 1.0) -> torch.Tensor:
    """``bce_weight`` x binary cross-entropy (mean over pixels) + ``dice_weight`` x :func:`dice_loss`
    over the samples that have an occluder. Dice of an empty target is about 1 for any non-zero
    prediction, so clean faces (negatives) are taught by the BCE term alone."""
    target = _check(logits, target)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    has = target.flatten(1).amax(1) > 0
    if not has.any():
        return bce_weight * bce
    return bce_weight * bce + dice_weight * dice_loss(logits[has], target[has]) * has.float().mean()


# --- inpainting -------------------------------------------------------------------------------

def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, hole: float = 6.0,
              valid: float = 1.0) -> torch.Tensor:
    """``hole`` x mean |pred - target| over hole pixels + ``valid`` x the same over valid pixels,
    each normalised by the number of pixels of the whole image (the partial-convolution paper's
    convention: a bigger hole weighs more)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    d = (pred - target).abs()
    return hole * (d * mask).mean() + valid * (d * (1 - mask)).mean()


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of images in [-1, 1], computed on [0, 1] as the metric is (SSIM's luminance
    term is not shift-invariant), Gaussian window 11, sigma 1.5 (scikit-image's
    ``gaussian_weights``), per channel, 'same' size with reflect padding."""
    a, b = (a + 1) / 2, (b + 1) / 2
    data_range = 1.0
    c = a.shape[1]
    g = _gaussian().to(a)
    kx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t):
        t = F.pad(t, (5, 5, 5, 5), mode="reflect")
        return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a ** 2
    sbb = blur(b * b) - mu_b ** 2
    sab = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - mean SSIM`` for images in [-1, 1]."""
    return 1 - ssim_map(pred, target).mean()


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (total variation)."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def _grey_laplacian(x: torch.Tensor) -> torch.Tensor:
    """4-neighbour Laplacian of the grey image (ITU-R 601 weights) of N x 3 x H x W, edges replicated."""
    g = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    p = F.pad(g, (1, 1, 1, 1), mode="replicate")
    return p[:, :, :-2, 1:-1] + p[:, :, 2:, 1:-1] + p[:, :, 1:-1, :-2] + p[:, :, 1:-1, 2:] - 4 * g


def detail_energy_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, sigma: float = 3.0,
                       eps: float = 1e-4) -> torch.Tensor:
    """How far the local amount of fine detail in the hole is from the truth's, whatever its phase:
    the mean over hole pixels of | sqrt(blur(lap(pred)^2)) - sqrt(blur(lap(target)^2)) |, with
    ``lap`` the grey Laplacian and ``blur`` a Gaussian of ``sigma`` px. A pixel loss pulls a fill
    towards the average face, whose Laplacian is flat; this term asks for as much texture as the
    true face has at each place (pores, lip lines, nostril edges) without asking for the same
    pixels. 0 for ``pred == target``."""
    g = _gaussian(int(4 * sigma) | 1, sigma).to(pred)
    k = (g[:, None] * g[None, :])[None, None]
    pad = k.shape[-1] // 2

    def energy(x):
        e = F.pad(_grey_laplacian(x) ** 2, (pad,) * 4, mode="replicate")
        return (F.conv2d(e, k) + eps).sqrt()

    with torch.no_grad():
        et = energy(target)
    d = (energy(pred) - et).abs() * mask
    return d.sum() / mask.sum().clamp_min(1.0)


def gram(f: torch.Tensor) -> torch.Tensor:
    n, c, h, w = f.shape
    f = f.flatten(2)
    return f @ f.transpose(1, 2) / (c * h * w)


class FeatureLoss(nn.Module):
    """Perceptual and style (Gram) losses on frozen ImageNet features, with the real weights LPIPS
    uses. Inputs in [-1, 1]; returns (perceptual, style).

    * ``net="vgg"``: VGG16 relu1_2..relu3_3 (``layers`` taps), perceptual = L1 between the raw
      features (the LaFIn / IFACENET recipe; about 2.8 s per batch-8 pass on one CPU thread).
    * ``net="alex"``: AlexNet relu1..relu5, perceptual = LPIPS's distance without its learned
      linear layer: each feature vector unit-normalised over channels, squared difference summed
      over channels, averaged over positions and taps (about 0.16 s a pass: what a CPU affords).
      Judge a model trained on it with the VGG-based LPIPS, not this one.
    """

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

    def __init__(self, net: str = "vgg", layers: int | None = None, pretrained: bool = True):
        super().__init__()
        from unveil.models.imagenet import AlexNetFeatures, VGG16Features

        if net == "vgg":
            layers = layers or 3
            feats = VGG16Features(pretrained=pretrained)
            feats.layers = feats.layers[: VGG16Features.taps[layers - 1] + 1]  # cut after the last tap
        elif net == "alex":
            layers = layers or 5
            feats = AlexNetFeatures(pretrained=pretrained)
            feats.convs = feats.convs[:layers]
        else:
            raise ValueError(f"feature net must be 'vgg' or 'alex', not {net!r}")
        self.net = net
        self.feats = feats.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.feats(((x + 1) / 2 - self.mean) / self.std)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fp = self.features(pred)
        with torch.no_grad():
            ft = self.features(target)
        if self.net == "alex":
            unit = [(F.normalize(a, dim=1, eps=1e-8), F.normalize(b, dim=1, eps=1e-8)) for a, b in zip(fp, ft)]
            perc = sum(((a - b) ** 2).sum(1).mean() for a, b in unit) / len(unit)
        else:
            perc = sum(F.l1_loss(a, b) for a, b in zip(fp, ft))
        style = sum(F.l1_loss(gram(a), gram(b)) for a, b in zip(fp, ft))
        return perc, style


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


def d_lsgan_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((real_logits - 1) ** 2).mean() + 0.5 * (fake_logits ** 2).mean()


def g_lsgan_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((fake_logits - 1) ** 2).mean()


def feature_matching_loss(fake_feats: list[torch.Tensor], real_feats: list[torch.Tensor]) -> torch.Tensor:
    """L1 between the discriminator's intermediate features on fake and (detached) real images."""
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake_feats, real_feats)) / max(1, len(fake_feats))


# --- PatchNCE (contrastive unpaired translation, CUT) -----------------------------------------

def patch_nce_loss(feat_q: torch.Tensor, feat_k: torch.Tensor, tau: float = 0.07) -> torch.Tensor:
    """PatchNCE (Park et al. 2020, CUT): for every query patch of the output, the key patch of the
    input at the same place is the positive and the other sampled patches *of the same image* are
    the negatives; cross-entropy over (1 positive + P - 1 negatives) with temperature ``tau``.

    ``feat_q``, ``feat_k``: N x P x D (or P x D) L2-normalised patch embeddings sampled at the same
    positions. The keys are detached (as in CUT). Returns the mean over all N x P queries. For
    identical, near-orthogonal features it is about ``log(1 + (P - 1) exp(-1 / tau))`` (close to 0);
    for unrelated features about ``log(P)``.
    """
    if feat_q.shape != feat_k.shape:
        raise ValueError(f"feat_q {tuple(feat_q.shape)} and feat_k {tuple(feat_k.shape)} differ in shape")
    if feat_q.dim() == 2:
        feat_q, feat_k = feat_q[None], feat_k[None]
    n, p, _ = feat_q.shape
    logits = torch.bmm(feat_q, feat_k.detach().transpose(1, 2)) / tau  # N x P x P, positives on the diagonal
    target = torch.arange(p, device=feat_q.device).expand(n, p)
    return F.cross_entropy(logits.reshape(n * p, p), target.reshape(-1))


def patch_weights(mask: torch.Tensor, size: tuple[int, int], hole_weight: float = 0.0) -> torch.Tensor:
    """Sampling weights (N x H*W) at a feature map's size: the visible share of each position
    (1 where the input is visible), plus ``hole_weight`` times its hole share. With the default 0,
    positions wholly inside the hole (whose input is blank: every such key looks alike, and
    matching them would teach the generator to keep the hole flat) are never drawn."""
    hole = F.adaptive_avg_pool2d(mask.float(), size) if tuple(mask.shape[2:]) != tuple(size) else mask.float()
    return ((1 - hole) + hole_weight * hole).flatten(1)


class PatchSampleMLP(nn.Module):
    """CUT's patch sampler and projection head: per layer a 2-layer MLP (``dim`` wide, ReLU) on the
    feature vectors at sampled positions, L2-normalised.

    ``forward(feats, num_patches, ids=None, mask=None)`` -> (list of N x P x dim, ids). Positions are
    drawn per image without replacement, with weights from ``mask`` (1 = hole, see
    :func:`patch_weights`) when given, uniformly otherwise; P is at most the number of positions
    with a non-zero weight in every image of the batch (on a 16 x 16 map with a large hole, fewer
    than 256). Pass the returned ``ids`` to sample the other image of the pair at the same places.
    """

    def __init__(self, channels: list[int], dim: int = 256, hole_weight: float = 0.0):
        super().__init__()
        self.hole_weight = hole_weight
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
                                  for c in channels)

    def forward(self, feats: list[torch.Tensor], num_patches: int = 256, ids: list[torch.Tensor] | None = None,
                mask: torch.Tensor | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if len(feats) != len(self.mlps):
            raise ValueError(f"{len(feats)} feature maps for {len(self.mlps)} PatchNCE heads")
        out, used = [], []
        for k, (f, mlp) in enumerate(zip(feats, self.mlps)):
            n, c, h, w = f.shape
            flat = f.flatten(2).transpose(1, 2)  # N x HW x C
            if ids is None:
                if mask is not None:
                    wts = patch_weights(mask, (h, w), self.hole_weight)
                else:
                    wts = torch.ones(n, h * w, device=f.device)
                p = min(num_patches, int((wts > 0).sum(1).min()))
                if p < 1:
                    raise ValueError("no position to sample PatchNCE patches from (the hole covers everything)")
                idx = torch.multinomial(wts, p, replacement=False)
            else:
                idx = ids[k]
            x = torch.gather(flat, 1, idx[..., None].expand(-1, -1, c))
            out.append(F.normalize(mlp(x), dim=-1))
            used.append(idx)
        return out, used


def multilayer_patch_nce(head: PatchSampleMLP, feats_q: list[torch.Tensor], feats_k: list[torch.Tensor],
                         num_patches: int = 256, tau: float = 0.07,
                         mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean :func:`patch_nce_loss` over layers: keys (the input's maps) sampled first (weighted by
    ``mask``), the queries (the output's maps) at the same positions, both through ``head``."""
    k, ids = head(feats_k, num_patches, mask=mask)
    q, _ = head(feats_q, num_patches, ids)
    return sum(patch_nce_loss(a, b, tau) for a, b in zip(q, k)) / len(q)
