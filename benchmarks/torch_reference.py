"""PyTorch references of regan_jax's GANs, for the benchmarks only.

The library never imports torch; this module is the "other side" of the speed
comparisons in :mod:`benchmarks.run`. Each network mirrors the Flax module of
the same config (:mod:`regan_jax.models.layers`) layer for layer and parameter
for parameter, in torch's NCHW layout:

* generator, DCGAN (``upsample='subpixel'``, the same-math reference)::

      z -> Linear(K, h0 w0 c0) -> ReLU -> [N, c0, h0, w0]
        -> s x (Conv2d 3x3 to 4 f_i -> pixel_shuffle(2) -> ReLU)
        -> Conv2d 3x3 to C -> tanh,          f_i = g_width 2^(s-1-i)

* generator, DCGAN (``upsample='conv_transpose'``, as in the PyTorch DCGAN
  example): the same with ``ConvTranspose2d(4x4, stride 2, padding 1)`` in
  place of conv + pixel shuffle;
* discriminator, DCGAN: ``s x (Conv2d 4x4 stride 2 padding 1 to d_width 2^i
  -> LeakyReLU 0.2) -> flatten -> Linear(F, 1)``;
* MLP (2-D mixtures): generator ``layers x (Linear g_width, ReLU) -> Linear -> tanh``,
  discriminator ``layers x (Linear d_width, LeakyReLU 0.2) -> Linear(1)``.

Parameter counts equal the Flax models' (``tests/test_benchmarks.py`` checks
it); the NCHW reshape of the projection and the channel order of the pixel
shuffle permute units, which changes no FLOP and no update.

Two training steps, both the non-saturating GAN loss with Adam:

* :func:`idiomatic_step` — the PyTorch DCGAN example's update: D on the real
  batch and on the detached fake batch (two calls, two backward passes), then
  G through D on the *same* fake batch (its forward reused);
* :func:`same_math_step` — the update of ``regan_jax.steps.gan_step``: one
  discriminator call on the concatenated real+fake batch, then the generator
  step on the same fakes (forward reused) through the updated D, with no
  gradient for D's weights.
"""

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


class ConvGenerator(nn.Module):
    """DCGAN generator without BatchNorm; NCHW output in [-1, 1].

    Args:
      latent_dim: size of z.
      width: channels of the last stage (``config.model.g_width``).
      stages: stride-2 upsampling stages.
      image_shape: ``(H, W, C)`` as in regan_jax.
      upsample: ``'subpixel'`` (Conv2d 3x3 + pixel_shuffle) or
        ``'conv_transpose'`` (ConvTranspose2d 4x4, stride 2, padding 1).
    """

    def __init__(
        self,
        latent_dim: int,
        width: int,
        stages: int,
        image_shape: tuple[int, int, int],
        upsample: str = "subpixel",
    ):
        super().__init__()
        _check_positive(latent_dim=latent_dim, width=width, stages=stages)
        if upsample not in ("subpixel", "conv_transpose"):
            raise ValueError(
                f"upsample {upsample!r} unknown; expected 'subpixel' or 'conv_transpose'"
            )
        height, wide, channels = image_shape
        self.base = (width * 2 ** (stages - 1), height // 2**stages, wide // 2**stages)
        self.project = nn.Linear(latent_dim, math.prod(self.base))
        ups = []
        in_c = self.base[0]
        for i in range(stages):
            features = width * 2 ** (stages - 1 - i)
            if upsample == "subpixel":
                ups.append(
                    nn.Sequential(
                        nn.Conv2d(in_c, 4 * features, 3, padding=1), nn.PixelShuffle(2), nn.ReLU()
                    )
                )
            else:
                ups.append(
                    nn.Sequential(
                        nn.ConvTranspose2d(in_c, features, 4, stride=2, padding=1), nn.ReLU()
                    )
                )
            in_c = features
        self.ups = nn.Sequential(*ups)
        self.out = nn.Conv2d(in_c, channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.project(z)).view(z.shape[0], *self.base)
        return torch.tanh(self.out(self.ups(h)))


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator without BatchNorm: NCHW images -> logits [N]."""

    def __init__(self, width: int, stages: int, image_shape: tuple[int, int, int]):
        super().__init__()
        _check_positive(width=width, stages=stages)
        height, wide, channels = image_shape
        layers = []
        in_c = channels
        for i in range(stages):
            layers += [
                nn.Conv2d(in_c, width * 2**i, 4, stride=2, padding=1),
                nn.LeakyReLU(LEAKY_SLOPE),
            ]
            in_c = width * 2**i
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(in_c * (height // 2**stages) * (wide // 2**stages), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))[:, 0]


class MLPGenerator(nn.Module):
    """``layers x (Linear width, ReLU) -> Linear out_dim -> tanh`` (as regan_jax's Generator)."""

    def __init__(self, latent_dim: int, width: int, layers: int, out_dim: int):
        super().__init__()
        _check_positive(latent_dim=latent_dim, width=width, layers=layers, out_dim=out_dim)
        blocks, in_dim = [], latent_dim
        for _ in range(layers):
            blocks += [nn.Linear(in_dim, width), nn.ReLU()]
            in_dim = width
        self.net = nn.Sequential(*blocks, nn.Linear(in_dim, out_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(z))


class MLPDiscriminator(nn.Module):
    """``layers x (Linear width, LeakyReLU 0.2) -> Linear(1)``: points -> logits [N]."""

    def __init__(self, in_dim: int, width: int, layers: int):
        super().__init__()
        _check_positive(in_dim=in_dim, width=width, layers=layers)
        blocks, d = [], in_dim
        for _ in range(layers):
            blocks += [nn.Linear(d, width), nn.LeakyReLU(LEAKY_SLOPE)]
            d = width
        self.net = nn.Sequential(*blocks, nn.Linear(d, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))[:, 0]


def make_gan(
    model_cfg, data_shape: tuple[int, ...], *, upsample: str | None = None
) -> tuple[nn.Module, nn.Module]:
    """The torch ``(generator, discriminator)`` of a regan_jax unconditional GAN's ``config.model``.

    Args:
      model_cfg: ``config.model`` (``arch`` 'mlp' or 'dcgan', widths, ...).
      data_shape: one example's shape in regan_jax's layout (``(2,)``,
        ``(28, 28, 1)``).
      upsample: override of ``model_cfg.upsample`` (DCGAN only).

    Raises:
      ValueError: an arch other than 'mlp'/'dcgan'.
    """
    from regan_jax import models  # Only for the stage rule shared with the JAX side.

    if model_cfg.arch == "mlp":
        size = math.prod(data_shape)
        return (
            MLPGenerator(model_cfg.latent_dim, model_cfg.g_width, model_cfg.mlp_layers, size),
            MLPDiscriminator(size, model_cfg.d_width, model_cfg.mlp_layers),
        )
    if model_cfg.arch == "dcgan":
        stages = models.num_stages(tuple(data_shape), model_cfg.stages)
        return (
            ConvGenerator(
                model_cfg.latent_dim,
                model_cfg.g_width,
                stages,
                tuple(data_shape),
                upsample or model_cfg.upsample,
            ),
            ConvDiscriminator(model_cfg.d_width, stages, tuple(data_shape)),
        )
    raise ValueError(f"arch {model_cfg.arch!r} unknown; expected 'mlp' or 'dcgan'")


def num_params(module: nn.Module) -> int:
    """Number of scalar parameters of a torch module."""
    return sum(p.numel() for p in module.parameters())


def adam(module: nn.Module, optimizer_cfg) -> torch.optim.Adam:
    """``torch.optim.Adam`` with a regan_jax optimizer config's lr, b1, b2, eps."""
    if optimizer_cfg.name != "adam":
        raise ValueError(f"the torch reference uses Adam, got {optimizer_cfg.name!r}")
    return torch.optim.Adam(
        module.parameters(),
        lr=optimizer_cfg.learning_rate,
        betas=(optimizer_cfg.b1, optimizer_cfg.b2),
        eps=optimizer_cfg.eps,
    )


def _d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating D loss: mean softplus(-D(x)) + softplus(D(G(z)))."""
    return (F.softplus(-real_logits) + F.softplus(fake_logits)).mean()


def _g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss: mean softplus(-D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def idiomatic_step(
    g: nn.Module, d: nn.Module, opt_g, opt_d, latent_dim: int
) -> Callable[[torch.Tensor], tuple[float, float]]:
    """The PyTorch DCGAN example's update, as a closure ``step(real)``.

    D: ``backward`` of the real term, then of the fake term on ``G(z).detach()``,
    one optimizer step; G: the same ``fake`` through the updated D, backward
    into G, one step. Returns the two loss tensors (not synchronised).
    """
    ones = zeros = None

    def step(real):
        nonlocal ones, zeros
        n = real.shape[0]
        if ones is None or ones.shape[0] != n:
            ones = torch.ones(n, device=real.device)
            zeros = torch.zeros(n, device=real.device)
        d.zero_grad(set_to_none=True)
        err_real = F.binary_cross_entropy_with_logits(d(real), ones)
        err_real.backward()
        fake = g(torch.randn(n, latent_dim, device=real.device))
        err_fake = F.binary_cross_entropy_with_logits(d(fake.detach()), zeros)
        err_fake.backward()
        opt_d.step()
        g.zero_grad(set_to_none=True)
        err_g = F.binary_cross_entropy_with_logits(d(fake), ones)
        err_g.backward()
        opt_g.step()
        return err_real + err_fake, err_g

    return step


def same_math_step(
    g: nn.Module, d: nn.Module, opt_g, opt_d, latent_dim: int
) -> Callable[[torch.Tensor], tuple[float, float]]:
    """regan_jax's GAN update (``steps.gan_step``, d_steps = 1), as a closure ``step(real)``.

    D: one call on ``cat(real, G(z).detach())``, loss
    ``mean softplus(-D(x)) + softplus(D(G(z)))``, one optimizer step. G: the
    same fakes (their forward pass reused, as ``jax.vjp`` does) through the
    updated D, loss ``mean softplus(-D(G(z)))``; D's parameters are frozen for
    that backward pass, so only the input gradient goes through D.
    """
    d_params = list(d.parameters())

    def step(real):
        n = real.shape[0]
        fake = g(torch.randn(n, latent_dim, device=real.device))
        opt_d.zero_grad(set_to_none=True)
        logits = d(torch.cat([real, fake.detach()]))
        d_loss = _d_loss(logits[:n], logits[n:])
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        for p in d_params:
            p.requires_grad_(False)
        g_loss = _g_loss(d(fake))
        g_loss.backward()
        for p in d_params:
            p.requires_grad_(True)
        opt_g.step()
        return d_loss, g_loss

    return step


STEPS = {"idiomatic": idiomatic_step, "same_math": same_math_step}
