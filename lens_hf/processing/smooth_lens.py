"""The smooth-lens residual of a DeepLense Model I image: the photon counts minus the best-fitting lens without
substructure, in units of the noise.

Every Model I image has the same main lens (SIE with the Einstein radius of 1e12 Msun, e1 = 0.1, external shear
gamma1 = 0.05, centred) and the same source profile (Sersic, amplitude 20, R = 0.25", n = 1); only the source
centre (uniform within +-0.35" on each axis), the exposure time and the substructure change. A vortex adds
3e10 Msun along a line through the centre, which for heavy axions (short lines) is a central point mass. So the
smooth model here is that main lens plus 3e10 Msun at the centre, and fitting it takes two numbers per image:

- the exposure time, first from the pixels far from the ring (r > 3"), which hold only the clipped background:
  E[counts] = E[max(0, t * rms * Z)] = t * rms / sqrt(2 pi); refined on the lensed light once the source is
  placed (weighted least squares);
- the source centre, by maximum likelihood under the simulator's noise (variance
  2 t * model + (t * rms)^2 + 1 counts^2), from the best of a 5 x 5 grid over the prior's square, refined by
  Nelder-Mead.

The residual ``(counts - t * model) / sqrt(variance)`` is what the substructure leaves: a vortex's line of mass
distorts the ring at a level (1-3 % of the peak for axions of 10^-23.4 eV) that a network does not pick out of
the raw image (``benchmarks/README.md``, axion mass), and which stands out once the ring itself is subtracted.

``residual_lens_model_i`` adds a second channel, the fitted smooth lens in units of the same noise
(``t * model / sqrt(variance)``, the signal-to-noise ratio of each pixel): a displaced ring leaves
``-grad(lens) . displacement`` in the residual, so a network that also sees the lens knows where, and how
strongly, a given displacement shows (``residual_model_i`` alone leaves it to guess the arcs' brightness from
the residual).

The fit reuses the simulator's own renderer (``lens_hf.data.simulate``, lenstronomy): the rays are shot through
the fixed lens once per process, so each trial source centre costs one Sersic evaluation and one PSF convolution
(about 1 ms); a whole fit takes 50-150 ms on one core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# The normalisation names (file_io.NORMALIZATIONS) computed here, and the preset each one fits.
RESIDUAL_PRESETS: dict[str, str] = {"residual_model_i": "model_i", "residual_lens_model_i": "model_i"}
# Pixels this far from the centre (arcsec) hold no lensed light in Model I (Einstein radius 1.28", source
# within 0.35" of the axis, Sersic radius 0.25"): the exposure time is measured on them.
BACKGROUND_RADIUS = 3.0
START_GRID = 5  # source centres per axis of the starting grid
START_STEP = 0.05  # arcsec: the first Nelder-Mead simplex's step from the best grid point
MAX_EVALS = 120  # Nelder-Mead likelihood evaluations


def noise_variance(rate: np.ndarray, exposure_time: float, background_rms: float) -> np.ndarray:
    """Per-pixel variance of Model I photon counts for a noiseless image ``rate`` (counts/s): the simulator's
    Gaussian-approximated Poisson noise drawn once more as Poisson (2 t * rate), its background
    ((t * rms)^2) and 1 for the rounding to whole counts."""
    t = exposure_time
    return 2.0 * t * np.clip(rate, 0.0, None) + (t * background_rms) ** 2 + 1.0


@dataclass
class SmoothLensFit:
    """The fitted smooth lens of one image: source centre (arcsec), exposure time (s), the whitened
    residual (H, W) float32 and the fitted lens in the same noise units (H, W) float32."""

    center_x: float
    center_y: float
    exposure_time: float
    residual: np.ndarray
    lens_snr: np.ndarray


class SmoothLensModel:
    """The smooth lens of a preset with its rays shot once (:meth:`rate` renders a source centre)."""

    def __init__(self, preset: str = "model_i"):
        from lens_hf.data import simulate
        from lens_hf.data.presets import get_preset

        self.preset = get_preset(preset)
        p = self.preset
        renderer = simulate._renderer(p, 1)
        if not hasattr(renderer, "_model") or p.background_rms is None:
            raise ValueError(f"the smooth-lens residual is defined for Model I only, not {p.name}")
        self._image_model = renderer._model
        scene = simulate.draw_scene(p, "no_substructure", 0, 0)  # the fixed lens and source parameters
        cosmo = {"z_lens": p.z_lens, "z_source": p.z_source, "H0": p.H0, "Om0": p.Om0, "Ob0": p.Ob0}
        vortex = float(simulate.einstein_radius(p.vortex_mass, **cosmo))
        lens = scene.kwargs_lens[:2] + [{"theta_E": vortex, "center_x": 0.0, "center_y": 0.0}]
        self._source = dict(scene.kwargs_source)
        x, y = self._image_model.ImageNumerics.coordinates_evaluate
        self._beta = self._image_model.LensModel.ray_shooting(x, y, lens)
        self._far = (np.hypot(x, y) > BACKGROUND_RADIUS).reshape(p.image_shape)

    def rate(self, center_x: float, center_y: float) -> np.ndarray:
        """The noiseless image (counts/s per pixel) of the source at (center_x, center_y) arcsec."""
        source = {**self._source, "center_x": float(center_x), "center_y": float(center_y)}
        flux = self._image_model.SourceModel.surface_brightness(*self._beta, [source])
        return self._image_model.ImageNumerics.re_size_convolve(flux, unconvolved=False)

    def variance(self, rate: np.ndarray, exposure_time: float) -> np.ndarray:
        return noise_variance(rate, exposure_time, self.preset.background_rms)

    def exposure_time(self, counts: np.ndarray) -> float:
        """The exposure time from the background-only pixels (see the module docstring)."""
        return float(np.sqrt(2 * np.pi) * counts[self._far].mean() / self.preset.background_rms)

    def fit(self, counts: np.ndarray) -> SmoothLensFit:
        """Fit the source centre and the exposure time to ``counts`` (checked raw photon counts)."""
        from scipy.optimize import minimize

        t = self.exposure_time(counts)
        if not t > 0:
            raise ValueError("no background counts far from the ring: not a Model I exposure")

        def nll(params: Any) -> float:
            rate = self.rate(params[0], params[1])
            var = self.variance(rate, t)
            return 0.5 * float(np.sum((counts - t * rate) ** 2 / var + np.log(var)))

        edge = self.preset.source_center_max
        grid = np.linspace(-edge, edge, START_GRID)
        _, x0, y0 = min((nll((x, y)), x, y) for x in grid for y in grid)
        start = np.array([x0, y0])
        result = minimize(
            nll,
            start,
            method="Nelder-Mead",
            options={
                "maxfev": MAX_EVALS,
                "xatol": 1e-4,
                "fatol": 0.05,
                "initial_simplex": start + np.vstack([np.zeros(2), np.diag([START_STEP, START_STEP])]),
            },
        )
        cx, cy = (float(v) for v in result.x)
        rate = self.rate(cx, cy)
        # The background gives t to about 1-2 %, which leaves the ring at +-0.5 sigma: refine it on the lensed
        # light (weighted least squares of counts = t * rate on the pixels where rate is above 5 % of its peak,
        # with the variance of the current t; two rounds).
        bright = rate > 0.05 * rate.max()
        for _ in range(2):
            weight = rate[bright] / self.variance(rate[bright], t)
            t = float(np.sum(weight * counts[bright]) / np.sum(weight * rate[bright]))
        sigma = np.sqrt(self.variance(rate, t))
        residual = (counts - t * rate) / sigma
        return SmoothLensFit(cx, cy, t, residual.astype(np.float32), (t * rate / sigma).astype(np.float32))


_MODELS: dict[str, SmoothLensModel] = {}


def smooth_lens_model(preset: str = "model_i") -> SmoothLensModel:
    """The :class:`SmoothLensModel` of ``preset``, built once per process."""
    if preset not in _MODELS:
        _MODELS[preset] = SmoothLensModel(preset)
    return _MODELS[preset]


def check_counts(image: np.ndarray, shape: tuple[int, int], method: str) -> np.ndarray:
    """``image`` as float64 photon counts, or ValueError saying why it is not the raw counts of a
    ``shape`` image (a min-max normalised or already-subtracted image is refused, not silently fitted)."""
    if image.shape != shape:
        raise ValueError(
            f"{method} needs a raw {shape[0]}x{shape[1]} px Model I image, got {image.shape[0]}x{image.shape[1]} px"
        )
    counts = np.asarray(image, dtype=np.float64)
    if counts.min() < 0 or not np.array_equal(counts, np.round(counts)) or counts.max() <= 1:
        raise ValueError(
            f"{method} needs the raw photon counts of a Model I image (whole numbers >= 0, as in the DeepLense "
            "archives), not normalised or negative pixels"
        )
    return counts


def smooth_lens_residual(image: np.ndarray, method: str = "residual_model_i") -> np.ndarray:
    """The whitened smooth-lens residual (H, W) float32 of a raw Model I image (photon counts), or for a method
    with two channels (``file_io.CHANNEL_COLUMNS``: ``residual_lens_model_i``) the residual and the fitted lens
    in noise units, (2, H, W) float32; ValueError for anything else."""
    from lens_hf.processing.file_io import normalization_channels

    model = smooth_lens_model(RESIDUAL_PRESETS[method])
    fit = model.fit(check_counts(image, model.preset.image_shape, method))
    if normalization_channels(method) == 2:
        return np.stack([fit.residual, fit.lens_snr])
    return fit.residual


__all__ = [
    "RESIDUAL_PRESETS",
    "SmoothLensFit",
    "SmoothLensModel",
    "check_counts",
    "noise_variance",
    "smooth_lens_model",
    "smooth_lens_residual",
]
