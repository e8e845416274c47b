"""Simulate DeepLense-style strong-lensing images with lenstronomy, in parallel and reproducibly.

One image is fully determined by ``(preset, label, seed, index)``: its random numbers come from
``np.random.SeedSequence([seed, label_id, index])`` (one child stream for the scene, one for the noise), so
the same request gives the same pixels whatever the number of worker processes or the order of work.

lenstronomy objects are built once per process and preset and reused. For Model I the point masses
(25 subhalos or the 100 elements of a vortex) are summed in one tight NumPy loop instead of lenstronomy's
one-profile-at-a-time loop; the deflections are the same as ``LensModel(["SIE", "SHEAR", "POINT_MASS", ...])``
to rounding (tested), and everything else (grid, ray shooting of the main lens, Sersic source, PSF) is
lenstronomy's ``ImageModel``. Models II and III go through lenstronomy's ``SimAPI`` exactly as DeepLenseSim
calls it, plus ``noise_for_model`` (which the public Model II archive left out).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import multiprocessing
import operator
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lens_hf.data.presets import (
    SimulationPreset,
    einstein_radius,
    get_preset,
    subhalo_mass_quantile,
    vortex_half_length,
)
from lens_hf.errors import LensHFError
from lens_hf.labels import DEEPLENSE_FOLDERS, LABEL2ID, LABELS, canonical_label
from lens_hf.processing.file_io import LensFileError, read_image

META_KEYS: tuple[str, ...] = (
    "label",
    "preset",
    "seed",
    "index",
    "axion_mass",
    "n_subhalos",
    "subhalo_mass_total",
    "source_x",
    "source_y",
    "exposure_time",
)
# The classes whose simulated images carry a value of these metadata columns (the others hold None, or 0 for a
# mass total): a regression on one of them needs only these classes simulated.
TARGET_CLASSES: dict[str, tuple[str, ...]] = {"axion_mass": ("vortex",), "subhalo_mass_total": ("subhalo",)}
MANIFEST_NAME = "lens_hf_simulation.json"
METADATA_NAME = "metadata.csv"
# lenstronomy's PointMass clamps the radius at 1e-25 arcsec; the same floor on r^2.
_R2_MIN = 1e-50


# ------------------------------------------------------------------------------------------- arguments
def _nonneg_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise LensHFError(f"{name} must be a non-negative integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise LensHFError(f"{name} must be a non-negative integer, got {value!r}") from None
    if number < 0:
        raise LensHFError(f"{name} must be a non-negative integer, got {number}")
    return number


def resolve_label(label: int | str) -> str:
    """Canonical label name for an id (0, 1, 2) or any folder alias ("cdm", "vort", ...)."""
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        if 0 <= int(label) < len(LABELS):
            return LABELS[int(label)]
    elif isinstance(label, str):
        name = canonical_label(label)
        if name is not None:
            return name
    raise LensHFError(f"unknown label {label!r} (choose from {', '.join(LABELS)} or ids 0-{len(LABELS) - 1})")


def _seed_sequences(
    seed: int, label_id: int, index: int
) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """Independent (scene, noise) streams of one image."""
    scene, noise = np.random.SeedSequence([seed, label_id, index]).spawn(2)
    return scene, noise


# ------------------------------------------------------------------------------------------- scene
@dataclass
class Scene:
    """Physical parameters of one image in lenstronomy keyword form (angles in arcsec).

    ``kwargs_lens`` is ``[SIE, SHEAR, POINT_MASS, ...]``; ``kwargs_source`` a SERSIC_ELLIPSE with either
    ``amp`` (Model I) or ``magnitude`` (Models II/III).
    """

    label: str
    kwargs_lens: list[dict[str, float]]
    kwargs_source: dict[str, float]
    exposure_time: float | None  # s
    axion_mass: float | None = None  # eV, vortex only
    subhalo_masses: np.ndarray = field(default_factory=lambda: np.empty(0))  # Msun, (n_subhalos,)

    @property
    def n_point_masses(self) -> int:
        return len(self.kwargs_lens) - 2

    @property
    def lens_model_list(self) -> list[str]:
        return ["SIE", "SHEAR"] + ["POINT_MASS"] * self.n_point_masses


def instrument_kwargs(preset: SimulationPreset) -> dict[str, Any]:
    """lenstronomy ``kwargs_single_band`` of a ``sim_api`` preset's ObservationConfig (Euclid or HST):
    pixel_scale (arcsec), seeing (arcsec FWHM), exposure_time (s per exposure), num_exposures, ..."""
    return dict(_instrument_kwargs(preset))


@lru_cache(maxsize=16)
def _instrument_kwargs(preset: SimulationPreset) -> dict[str, Any]:
    if preset.instrument == "Euclid":
        from lenstronomy.SimulationAPI.ObservationConfig.Euclid import Euclid

        config = Euclid(
            band=preset.instrument_band,
            psf_type=preset.instrument_psf_type,
            coadd_years=preset.instrument_coadd_years,
        )
    elif preset.instrument == "HST":
        from lenstronomy.SimulationAPI.ObservationConfig.HST import HST

        config = HST(
            band=preset.instrument_band,
            psf_type=preset.instrument_psf_type,
            coadd_years=preset.instrument_coadd_years,
        )
    else:
        raise LensHFError(f"preset {preset.name}: unknown instrument {preset.instrument!r} (Euclid or HST)")
    kwargs = dict(config.kwargs_single_band())
    if not math.isclose(kwargs["pixel_scale"], preset.pixel_scale):
        raise LensHFError(
            f"preset {preset.name}: pixel_scale {preset.pixel_scale} differs from the {preset.instrument} "
            f"configuration ({kwargs['pixel_scale']} arcsec/px)"
        )
    return kwargs


def _exposure_time(preset: SimulationPreset, rng: np.random.Generator) -> float | None:
    if preset.renderer == "image_model":
        if preset.log10_exposure_range is None:
            raise LensHFError(
                f"preset {preset.name}: log10_exposure_range is required by the image_model renderer"
            )
        lo, hi = preset.log10_exposure_range
        return float(10 ** rng.uniform(lo, hi))
    kwargs = _instrument_kwargs(preset)
    return float(kwargs["exposure_time"] * kwargs.get("num_exposures", 1))


def draw_scene(preset: str | SimulationPreset, label: int | str, seed: int, index: int) -> Scene:
    """Draw the physical parameters of image ``index`` of class ``label`` (no rendering, ~50 us).

    Order of draws (as in DeepLenseSim): subhalo masses then positions, or axion mass then vortex angle;
    then the source centre; then the exposure time (Model I).
    """
    preset = get_preset(preset)
    name = resolve_label(label)
    seed, index = _nonneg_int(seed, "seed"), _nonneg_int(index, "index")
    rng = np.random.default_rng(_seed_sequences(seed, LABEL2ID[name], index)[0])

    cosmo = {
        "z_lens": preset.z_lens,
        "z_source": preset.z_source,
        "H0": preset.H0,
        "Om0": preset.Om0,
        "Ob0": preset.Ob0,
    }
    kwargs_lens: list[dict[str, float]] = [
        {
            "theta_E": einstein_radius(preset.main_halo_mass, **cosmo),
            "e1": preset.sie_e1,
            "e2": preset.sie_e2,
            "center_x": 0.0,
            "center_y": 0.0,
        },
        {"gamma1": preset.shear_gamma1, "gamma2": preset.shear_gamma2},
    ]
    axion_mass = None
    masses = np.empty(0)
    if name == "subhalo":
        n = preset.n_subhalos
        masses = subhalo_mass_quantile(
            rng.uniform(0.0, 1.0, n), preset.subhalo_mass_min, preset.subhalo_mass_max, preset.subhalo_beta
        )
        radius = rng.uniform(preset.subhalo_r_min, preset.subhalo_r_max, n)
        angle = rng.uniform(0.0, 2 * np.pi, n)
        # DeepLenseSim: x = r sin(angle), y = r cos(angle).
        xs, ys = radius * np.sin(angle), radius * np.cos(angle)
        thetas = einstein_radius(masses, **cosmo)
        kwargs_lens += [
            {"theta_E": float(t), "center_x": float(x), "center_y": float(y)}
            for t, x, y in zip(thetas, xs, ys)
        ]
    elif name == "vortex":
        lo, hi = preset.log10_axion_mass_range
        axion_mass = float(10 ** rng.uniform(lo, hi))
        n = preset.vortex_n_elements
        half_length = vortex_half_length(axion_mass, preset.vortex_length_coeff)
        coords = np.linspace(-half_length, half_length, n)
        angle = 2 * np.pi * rng.random()
        theta = float(einstein_radius(preset.vortex_mass / n, **cosmo))
        kwargs_lens += [
            {"theta_E": theta, "center_x": float(c * np.cos(angle)), "center_y": float(c * np.sin(angle))}
            for c in coords
        ]
    cx, cy = rng.uniform(-preset.source_center_max, preset.source_center_max, 2)
    source: dict[str, float] = {
        "R_sersic": preset.source_r_sersic,
        "n_sersic": preset.source_n_sersic,
        "e1": preset.source_e1,
        "e2": preset.source_e2,
        "center_x": float(cx),
        "center_y": float(cy),
    }
    if preset.source_magnitude is not None:
        source = {"magnitude": preset.source_magnitude, **source}
    elif preset.source_amp is not None:
        source = {"amp": preset.source_amp, **source}
    else:
        raise LensHFError(f"preset {preset.name}: set source_amp or source_magnitude")
    return Scene(
        label=name,
        kwargs_lens=kwargs_lens,
        kwargs_source=source,
        exposure_time=_exposure_time(preset, rng),
        axion_mass=axion_mass,
        subhalo_masses=masses,
    )


def scene_meta(preset: SimulationPreset, scene: Scene, seed: int, index: int) -> dict[str, Any]:
    """The metadata row of one image (keys :data:`META_KEYS`)."""
    return {
        "label": scene.label,
        "preset": preset.name,
        "seed": int(seed),
        "index": int(index),
        "axion_mass": scene.axion_mass,
        "n_subhalos": int(scene.subhalo_masses.size),
        "subhalo_mass_total": float(scene.subhalo_masses.sum()),
        "source_x": scene.kwargs_source["center_x"],
        "source_y": scene.kwargs_source["center_y"],
        "exposure_time": scene.exposure_time,
    }


# ------------------------------------------------------------------------------------------- rendering
def point_mass_deflection(
    x: np.ndarray, y: np.ndarray, theta_e: np.ndarray, center_x: np.ndarray, center_y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Summed deflection (arcsec) of point masses at pixel coordinates ``x, y`` (arcsec, shape (N,)).

    Same as summing lenstronomy ``PointMass.derivatives``: ``alpha = theta_E^2 (x - x_c) / r^2``. One pass
    per mass over preallocated buffers, ~4x faster than the per-profile loop of ``LensModel``.
    """
    ax, ay = np.zeros_like(x), np.zeros_like(y)
    dx, dy, r2, tmp = (np.empty_like(x) for _ in range(4))
    for te2, cx, cy in zip(np.square(theta_e), center_x, center_y):
        np.subtract(x, cx, out=dx)
        np.subtract(y, cy, out=dy)
        np.multiply(dx, dx, out=r2)
        np.multiply(dy, dy, out=tmp)
        r2 += tmp
        np.maximum(r2, _R2_MIN, out=r2)
        np.divide(te2, r2, out=r2)
        dx *= r2
        dy *= r2
        ax += dx
        ay += dy
    return ax, ay


def _main_lens_with_point_masses() -> Any:
    """A lenstronomy ``LensModel(["SIE", "SHEAR"])`` whose ray shooting also subtracts the point masses
    listed after the first two entries of ``kwargs`` (the class is built lazily: lenstronomy is slow to import)."""
    from lenstronomy.LensModel.lens_model import LensModel

    class MainLensWithPointMasses(LensModel):
        def ray_shooting(self, x, y, kwargs, k=None):
            if k is not None:
                raise ValueError("per-profile ray shooting is not supported")
            beta_x, beta_y = super().ray_shooting(x, y, kwargs[:2])
            masses = kwargs[2:]
            if masses:
                theta = np.array([m["theta_E"] for m in masses])
                cx = np.array([m["center_x"] for m in masses])
                cy = np.array([m["center_y"] for m in masses])
                ax, ay = point_mass_deflection(np.asarray(x, float), np.asarray(y, float), theta, cx, cy)
                beta_x, beta_y = beta_x - ax, beta_y - ay
            return beta_x, beta_y

    return MainLensWithPointMasses(["SIE", "SHEAR"])


class _ImageModelRenderer:
    """Model I: lenstronomy ``ImageModel`` on a square grid, Gaussian PSF, DeepLenseSim's noise recipe."""

    def __init__(self, preset: SimulationPreset, n_point_masses: int):
        from lenstronomy.Data.imaging_data import ImageData
        from lenstronomy.Data.psf import PSF
        from lenstronomy.ImSim.image_model import ImageModel
        from lenstronomy.LightModel.light_model import LightModel
        from lenstronomy.Util import util

        if preset.psf_fwhm is None or preset.background_rms is None or preset.log10_exposure_range is None:
            raise LensHFError(
                f"preset {preset.name}: psf_fwhm, background_rms and log10_exposure_range are required"
            )
        self.preset = preset
        _, _, ra0, dec0, _, _, pix2angle, _ = util.make_grid_with_coordtransform(
            num_pix=preset.num_pix,
            delta_pix=preset.pixel_scale,
            center_ra=0,
            center_dec=0,
            subgrid_res=1,
            inverse=False,
        )
        data = ImageData(
            background_rms=preset.background_rms,
            exposure_time=10 ** preset.log10_exposure_range[0],  # unused by the noiseless model
            ra_at_xy_0=ra0,
            dec_at_xy_0=dec0,
            transform_pix2angle=pix2angle,
            image_data=np.zeros(preset.image_shape),
        )
        psf = PSF(
            psf_type="GAUSSIAN",
            fwhm=preset.psf_fwhm,
            pixel_size=preset.pixel_scale,
            truncation=preset.psf_truncation,
        )
        self._model = ImageModel(
            data,
            psf,
            lens_model_class=_main_lens_with_point_masses(),
            source_model_class=LightModel(["SERSIC_ELLIPSE"]),
            kwargs_numerics={"supersampling_factor": 1, "supersampling_convolution": False},
        )

    def model(self, scene: Scene) -> np.ndarray:
        """Noiseless image, counts/s per pixel, (num_pix, num_pix) float64."""
        return self._model.image(scene.kwargs_lens, [scene.kwargs_source])

    def observe(self, model: np.ndarray, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        """DeepLenseSim ``simple_sim``: Gaussian-approximated Poisson noise (``image_util.add_poisson``) and
        background (``image_util.add_background``), scaled by the exposure, then a Poisson draw of the clipped
        counts. Returns int64 photon counts."""
        exp_time = scene.exposure_time
        poisson = rng.standard_normal(model.shape) * np.sqrt(np.abs(model) / exp_time)
        background = rng.standard_normal(model.shape) * self.preset.background_rms
        expected = exp_time * (model + poisson + background)
        return rng.poisson(expected.clip(min=0)).astype(np.int64, copy=False)


class _SimAPIRenderer:
    """Models II/III: lenstronomy ``SimAPI`` with an ObservationConfig, called as DeepLenseSim does."""

    def __init__(self, preset: SimulationPreset, n_point_masses: int):
        from astropy.cosmology import FlatLambdaCDM
        from lenstronomy.SimulationAPI.sim_api import SimAPI

        self.preset = preset
        n_lenses = 2 + n_point_masses
        kwargs_model: dict[str, Any] = {
            "lens_model_list": ["SIE", "SHEAR"] + ["POINT_MASS"] * n_point_masses,
            "source_light_model_list": ["SERSIC_ELLIPSE"],
            "cosmo": FlatLambdaCDM(H0=preset.H0, Om0=preset.Om0, Ob0=preset.Ob0),
            "z_source": preset.z_source,
        }
        if preset.z_source_convention is not None:
            kwargs_model.update(
                lens_redshift_list=[preset.z_lens] * n_lenses,
                source_redshift_list=[preset.z_source],
                z_source_convention=preset.z_source_convention,
            )
        else:
            kwargs_model["z_lens"] = preset.z_lens
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Cosmology is provided..." from multi-plane set-up
            self._sim = SimAPI(
                num_pix=preset.num_pix,
                kwargs_single_band=instrument_kwargs(preset),
                kwargs_model=kwargs_model,
            )
            self._model = self._sim.image_model_class({"point_source_supersampling_factor": 1})

    def model(self, scene: Scene) -> np.ndarray:
        """Noiseless image in the instrument's data units per pixel, (num_pix, num_pix) float64."""
        kwargs_source = [dict(scene.kwargs_source)]
        if "magnitude" in kwargs_source[0]:
            _, kwargs_source, _ = self._sim.magnitude2amplitude(None, kwargs_source)
        return self._model.image(scene.kwargs_lens, kwargs_source, None)

    def observe(self, model: np.ndarray, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        """``model + SimAPI.noise_for_model(model)`` (background + Poisson), seeded from the image's stream."""
        if not self.preset.add_noise:
            return np.asarray(model, dtype=np.float64)
        noise = self._sim.noise_for_model(model, seed=int(rng.integers(0, 2**32)))
        return np.asarray(model + noise, dtype=np.float64)


_RENDERERS: dict[tuple[SimulationPreset, int], _ImageModelRenderer | _SimAPIRenderer] = {}


def _renderer(preset: SimulationPreset, n_point_masses: int) -> _ImageModelRenderer | _SimAPIRenderer:
    """Per-process cache: lenstronomy objects are built once per (preset, number of point masses)."""
    key = (preset, n_point_masses)
    renderer = _RENDERERS.get(key)
    if renderer is None:
        if preset.renderer == "image_model":
            renderer = _ImageModelRenderer(preset, n_point_masses)
        elif preset.renderer == "sim_api":
            renderer = _SimAPIRenderer(preset, n_point_masses)
        else:
            raise LensHFError(
                f"preset {preset.name}: unknown renderer {preset.renderer!r} (image_model or sim_api)"
            )
        _RENDERERS[key] = renderer
    return renderer


def noiseless_image(preset: str | SimulationPreset, scene: Scene) -> np.ndarray:
    """The noiseless model of ``scene``, (num_pix, num_pix) float64 (flux per pixel before noise)."""
    preset = get_preset(preset)
    return _renderer(preset, scene.n_point_masses).model(scene)


def simulate_image(
    preset: str | SimulationPreset, label: int | str, seed: int, index: int
) -> tuple[np.ndarray, dict]:
    """Image ``index`` of class ``label`` for ``seed``, exactly as the DeepLense archives store it.

    Returns ``(image, meta)``: model_i a (150, 150) int64 array of photon counts, model_ii/iii a (64, 64)
    float64 flux array; ``meta`` has the keys of :data:`META_KEYS` (axion_mass in eV or None, masses in
    Msun, source centre in arcsec, exposure_time in s).
    """
    preset = get_preset(preset)
    scene = draw_scene(preset, label, seed, index)
    renderer = _renderer(preset, scene.n_point_masses)
    rng = np.random.default_rng(_seed_sequences(seed, LABEL2ID[scene.label], index)[1])
    image = renderer.observe(renderer.model(scene), scene, rng)
    return image.astype(preset.output_dtype, copy=False), scene_meta(preset, scene, seed, index)


# ------------------------------------------------------------------------------------------- parallel runs
def _available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _resolve_workers(workers: int | None, n_tasks: int) -> int:
    if workers is None:
        workers = _available_cpus()
    workers = _nonneg_int(workers, "workers")
    if workers < 1:
        raise LensHFError("workers must be at least 1")
    return max(1, min(workers, n_tasks))


def _mp_context() -> multiprocessing.context.BaseContext:
    # fork shares the already-imported lenstronomy with the workers (a spawn costs ~2 s of imports each);
    # macOS and Windows get spawn.
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _worker_init() -> None:
    # Ctrl-C is handled by the parent, which terminates the pool; workers stay quiet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _preload(preset: SimulationPreset) -> None:
    """Import lenstronomy and fill the Einstein-radius cache before forking, so workers inherit them."""
    _renderer(preset, draw_scene(preset, 0, 0, 0).n_point_masses)


def _run_tasks(
    fn: Callable[[tuple], Any],
    tasks: Sequence[tuple],
    *,
    workers: int | None,
    progress: bool,
    desc: str,
    preset: SimulationPreset,
) -> Iterator[Any]:
    """Ordered results of ``fn(task)``: in-process for one worker, otherwise a process pool (chunked imap)."""
    n_workers = _resolve_workers(workers, len(tasks))
    with tqdm(total=len(tasks), desc=desc, unit="img", disable=not progress, dynamic_ncols=True) as bar:
        if n_workers == 1:
            for task in tasks:
                result = fn(task)
                bar.update()
                yield result
            return
        _preload(preset)
        chunksize = max(1, min(16, len(tasks) // (n_workers * 8)))
        with _mp_context().Pool(n_workers, initializer=_worker_init) as pool:
            for result in pool.imap(fn, tasks, chunksize=chunksize):
                bar.update()
                yield result


def _label_list(labels: Sequence[int | str]) -> list[str]:
    names = [resolve_label(label) for label in labels]
    if not names:
        raise LensHFError("no labels to simulate")
    if len(set(names)) != len(names):
        raise LensHFError(f"labels repeat: {', '.join(names)}")
    return names


def _simulate_task(task: tuple[SimulationPreset, int, int, int, str | None]) -> tuple[np.ndarray, dict]:
    preset, label_id, seed, index, normalize = task
    image, meta = simulate_image(preset, label_id, seed, index)
    if normalize is not None:
        from lens_hf.processing.file_io import normalize_image

        image = normalize_image(image, normalize, f"simulated {meta['label']} #{index}")
    return image, meta


def iter_simulations(
    preset: str | SimulationPreset,
    per_class: int,
    seed: int,
    *,
    workers: int | None = None,
    labels: Sequence[int | str] = LABELS,
    progress: bool = True,
    normalize: str | None = None,
) -> Iterator[tuple[np.ndarray, dict]]:
    """Iterate over ``(image, meta)`` for ``per_class`` images of each label: class-major, then index order.

    ``workers`` processes (default: all available CPUs) share the work; the pixels do not depend on it.
    ``normalize``: a :func:`lens_hf.processing.file_io.normalize_image` method applied in the workers (for
    the costly ones, such as the smooth-lens fit of ``residual_model_i``); None yields the raw images.
    Arguments are checked at the call, before anything is simulated.
    """
    preset = get_preset(preset)
    per_class = _nonneg_int(per_class, "per_class")
    seed = _nonneg_int(seed, "seed")
    names = _label_list(labels)
    tasks = [(preset, LABEL2ID[name], seed, i, normalize) for name in names for i in range(per_class)]
    if not tasks:
        return iter(())
    _resolve_workers(workers, len(tasks))
    return _run_tasks(
        _simulate_task,
        tasks,
        workers=workers,
        progress=progress,
        desc=f"simulating {preset.name}",
        preset=preset,
    )


# ------------------------------------------------------------------------------------------- archive writer
def archive_file_name(preset_name: str, seed: int, label: str, index: int) -> str:
    """``<folder>_sim_<128-bit int>.npy`` as in the DeepLense archives; the integer is a hash of the request,
    so a rerun knows which files already exist."""
    key = f"lens_hf|{preset_name}|{seed}|{label}|{index}".encode()
    number = int.from_bytes(hashlib.blake2b(key, digest_size=16).digest(), "big")
    return f"{DEEPLENSE_FOLDERS[label]}_sim_{number}.npy"


def _archive_path(out_dir: Path, preset: SimulationPreset, seed: int, label: str, index: int) -> Path:
    return out_dir / DEEPLENSE_FOLDERS[label] / archive_file_name(preset.name, seed, label, index)


def _encode_npy(image: np.ndarray, axion_mass: float | None) -> bytes:
    buffer = io.BytesIO()
    if axion_mass is None:
        np.save(buffer, image, allow_pickle=False)
    else:
        # DeepLense axion files: a 1-D object array [image, axion_mass_eV] (this is writing, not loading).
        record = np.empty(2, dtype=object)
        record[0], record[1] = image, np.float64(axion_mass)
        np.save(buffer, record, allow_pickle=True)
    return buffer.getvalue()


def _write_atomic(path: Path, payload: bytes) -> None:
    """Write to a temporary name in the same folder, then rename: readers never see a partial file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _is_complete(path: Path, preset: SimulationPreset, label: str) -> bool:
    """True when ``path`` loads cleanly with the preset's image shape (and an axion mass for vortices)."""
    try:
        image, meta = read_image(path)
    except LensFileError:
        return False
    return image.shape == preset.image_shape and (label != "vortex" or "axion_mass" in meta)


def _write_task(task: tuple[SimulationPreset, int, int, int, str]) -> tuple[dict, str]:
    preset, label_id, seed, index, path_str = task
    path, label = Path(path_str), LABELS[label_id]
    status = "written"
    if path.exists():
        if _is_complete(path, preset, label):
            return scene_meta(preset, draw_scene(preset, label, seed, index), seed, index), "skipped"
        path.unlink()
        status = "replaced"
    image, meta = simulate_image(preset, label, seed, index)
    _write_atomic(path, _encode_npy(image, meta["axion_mass"]))
    return meta, status


def _manifest(preset: SimulationPreset, per_class: int, seed: int) -> dict[str, Any]:
    return {
        "preset": preset.name,
        "per_class": per_class,
        "seed": seed,
        "preset_params": json.loads(json.dumps(asdict(preset))),
    }


def _read_manifest(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not {"preset", "seed", "per_class"} <= data.keys():
            raise ValueError("missing keys")
        return data
    except (OSError, ValueError) as err:
        raise LensHFError(
            f"{path}: unreadable simulation manifest ({err}); remove it or choose another folder"
        ) from None


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_deeplense(
    out_dir: str | os.PathLike,
    preset: str | SimulationPreset,
    per_class: int,
    seed: int,
    *,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write a DeepLense-layout archive: ``out_dir/{axion,cdm,no_sub}/<folder>_sim_<int>.npy``.

    Files are written atomically (temporary name, then rename) and the run is resumable: files that load
    cleanly are kept, truncated/corrupt ones and stray temporary files are removed and regenerated, so an
    interrupted run followed by a rerun leaves the same bytes as one uninterrupted run. ``out_dir`` gets a
    ``lens_hf_simulation.json`` manifest first (a folder holding another preset or seed is refused) and a
    ``metadata.csv`` (``path`` relative to ``out_dir``, then :data:`META_KEYS`) last.

    Returns counts: ``files``, ``written``, ``skipped`` (already complete), ``replaced`` (corrupt),
    ``removed_temp``, ``trimmed`` (files beyond a smaller ``per_class`` of an earlier run), plus the
    request and the ``metadata`` path.
    """
    preset = get_preset(preset)
    per_class = _nonneg_int(per_class, "per_class")
    seed = _nonneg_int(seed, "seed")
    if per_class < 1:
        raise LensHFError("per_class must be at least 1")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LensHFError(f"{out}: exists and is not a folder")
    try:
        return _write_deeplense(out, preset, per_class, seed, workers=workers, progress=progress)
    except OSError as err:
        where = err.filename or out
        raise LensHFError(f"{where}: cannot write the archive ({err.strerror or err})") from None


def _write_deeplense(
    out: Path, preset: SimulationPreset, per_class: int, seed: int, *, workers: int | None, progress: bool
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST_NAME
    manifest = _manifest(preset, per_class, seed)
    previous = _read_manifest(manifest_path)
    trimmed = 0
    if previous is None:
        foreign = [p for folder in DEEPLENSE_FOLDERS.values() for p in (out / folder).glob("*.npy")]
        if foreign:
            raise LensHFError(
                f"{out}: already holds .npy files not written by lens_hf (e.g. {foreign[0]}); choose an empty folder"
            )
    else:
        same_params = previous.get("preset_params") == manifest["preset_params"]
        if previous["preset"] != preset.name or previous["seed"] != seed or not same_params:
            raise LensHFError(
                f"{out}: holds a simulation of preset {previous['preset']} with seed {previous['seed']}; "
                f"refusing to mix it with preset {preset.name} seed {seed} (choose another folder)"
            )
        # A smaller per_class than before: remove the files of the indices no longer requested.
        for label in LABELS:
            for index in range(per_class, _nonneg_int(previous["per_class"], "per_class")):
                path = _archive_path(out, preset, seed, label, index)
                if path.exists():
                    path.unlink()
                    trimmed += 1
    (out / METADATA_NAME).unlink(missing_ok=True)  # rewritten at the end; never stale after an interruption
    _write_atomic(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())

    removed_temp = 0
    for folder in DEEPLENSE_FOLDERS.values():
        (out / folder).mkdir(exist_ok=True)
        for stray in (out / folder).glob(f".{folder}_sim_*.npy.*.tmp"):
            stray.unlink(missing_ok=True)
            removed_temp += 1
    for stray in out.glob(f".{METADATA_NAME}.*.tmp"):
        stray.unlink(missing_ok=True)
        removed_temp += 1

    tasks = [
        (preset, LABEL2ID[label], seed, index, str(_archive_path(out, preset, seed, label, index)))
        for label in LABELS
        for index in range(per_class)
    ]
    counts = {"written": 0, "skipped": 0, "replaced": 0}
    rows: list[list[str]] = []
    results = _run_tasks(
        _write_task, tasks, workers=workers, progress=progress, desc=f"writing {preset.name}", preset=preset
    )
    for task, (meta, status) in zip(tasks, results):
        counts[status] += 1
        relative = Path(task[4]).relative_to(out).as_posix()
        rows.append([relative] + [_csv_value(meta[key]) for key in META_KEYS])

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", *META_KEYS])
    writer.writerows(rows)
    metadata_path = out / METADATA_NAME
    _write_atomic(metadata_path, text.getvalue().encode())
    return {
        "out_dir": str(out),
        "preset": preset.name,
        "per_class": per_class,
        "seed": seed,
        "files": len(tasks),
        **counts,
        "removed_temp": removed_temp,
        "trimmed": trimmed,
        "metadata": str(metadata_path),
    }


__all__ = [
    "META_KEYS",
    "Scene",
    "archive_file_name",
    "draw_scene",
    "instrument_kwargs",
    "iter_simulations",
    "noiseless_image",
    "point_mass_deflection",
    "resolve_label",
    "scene_meta",
    "simulate_image",
    "write_deeplense",
]
