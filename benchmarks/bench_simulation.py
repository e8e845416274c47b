"""Simulation throughput: lens_hf (process pool and one worker) against a plain per-image lenstronomy loop.

    python benchmarks/bench_simulation.py [--per-class N] [--workers K] [--preset model_i]

The plain loop is what a DeepLenseSim-style script does: for every image it computes the Einstein radii
with astropy, builds fresh lenstronomy objects (``ImageModel`` with one ``POINT_MASS`` profile per subhalo or
vortex element, or ``SimAPI`` for Models II/III) and draws the noise, in one process. It uses the same
physical parameters as lens_hf (``draw_scene``), and its noiseless images are compared with lens_hf's.
Writes ``benchmarks/results/simulation.json`` and ``benchmarks/results/simulation.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lens_hf.data.presets import SimulationPreset, get_preset  # noqa: E402
from lens_hf.data.simulate import (  # noqa: E402
    Scene,
    draw_scene,
    instrument_kwargs,
    iter_simulations,
    noiseless_image,
    simulate_image,
)
from lens_hf.labels import LABELS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _astropy_einstein_radius(mass: np.ndarray | float, preset: SimulationPreset) -> np.ndarray:
    """DeepLenseSim's ``mass_to_radius``: a fresh astropy cosmology and luminosity distances on every call."""
    from astropy import units as u
    from astropy.constants import G, M_sun, c
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=preset.H0, Om0=preset.Om0, Ob0=preset.Ob0)
    d_l = cosmo.luminosity_distance(preset.z_lens).to(u.m)
    d_s = cosmo.luminosity_distance(preset.z_source).to(u.m)
    theta = np.sqrt(4 * G * np.asarray(mass) * M_sun / c**2 * (d_s - d_l) / (d_l * d_s))
    return theta.decompose().value * 206265


def _naive_lens_kwargs(preset: SimulationPreset, scene: Scene) -> list[dict]:
    kwargs = [dict(k) for k in scene.kwargs_lens]
    kwargs[0]["theta_E"] = float(_astropy_einstein_radius(preset.main_halo_mass, preset))
    if scene.label == "subhalo":
        thetas = _astropy_einstein_radius(scene.subhalo_masses, preset)
    elif scene.label == "vortex":
        n = preset.vortex_n_elements
        thetas = _astropy_einstein_radius(preset.vortex_mass / n * np.ones(n), preset)
    else:
        thetas = []
    for k, theta in zip(kwargs[2:], thetas):
        k["theta_E"] = float(theta)
    return kwargs


def naive_image(preset: SimulationPreset, scene: Scene, noise_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One image the plain way: (noiseless model, observed image)."""
    import lenstronomy.Util.image_util as image_util
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    kwargs_lens = _naive_lens_kwargs(preset, scene)
    np.random.seed(noise_seed)
    if preset.renderer == "image_model":
        from lenstronomy.Data.imaging_data import ImageData
        from lenstronomy.Data.psf import PSF
        from lenstronomy.ImSim.image_model import ImageModel
        from lenstronomy.Util import util

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
            exposure_time=scene.exposure_time,
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
        model_class = ImageModel(
            data,
            psf,
            lens_model_class=LensModel(scene.lens_model_list),
            source_model_class=LightModel(["SERSIC_ELLIPSE"]),
            kwargs_numerics={"supersampling_factor": 1, "supersampling_convolution": False},
        )
        model = model_class.image(kwargs_lens, [scene.kwargs_source])
        exp_time = scene.exposure_time
        poisson = image_util.add_poisson(model, exp_time=exp_time)
        background = image_util.add_background(model, sigma_bkd=preset.background_rms)
        image = np.random.poisson((exp_time * (model + poisson + background)).clip(min=0))
        return model, image

    from astropy.cosmology import FlatLambdaCDM
    from lenstronomy.SimulationAPI.sim_api import SimAPI

    n_lenses = len(kwargs_lens)
    kwargs_model = {
        "lens_model_list": scene.lens_model_list,
        "lens_redshift_list": [preset.z_lens] * n_lenses,
        "source_light_model_list": ["SERSIC_ELLIPSE"],
        "source_redshift_list": [preset.z_source],
        "cosmo": FlatLambdaCDM(H0=preset.H0, Om0=preset.Om0, Ob0=preset.Ob0),
        "z_source_convention": preset.z_source_convention,
        "z_source": preset.z_source,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = SimAPI(
            num_pix=preset.num_pix, kwargs_single_band=instrument_kwargs(preset), kwargs_model=kwargs_model
        )
        model_class = sim.image_model_class({"point_source_supersampling_factor": 1})
    _, kwargs_source, _ = sim.magnitude2amplitude(None, [scene.kwargs_source])
    model = model_class.image(kwargs_lens, kwargs_source, None)
    return model, model + sim.noise_for_model(model)


def _machine() -> dict:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    import lenstronomy

    return {
        "cpu_count": os.cpu_count(),
        "cpus_available": cpus,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "lenstronomy": lenstronomy.__version__,
        "load_average_1min_at_start": load,
    }


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool workers), user + system."""
    try:
        import resource
    except ImportError:  # not on Unix: wall time only
        return float("nan")
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _row(method: str, workers: int, count: int, seconds: float, cpu: float) -> dict:
    row = {
        "method": method,
        "workers": workers,
        "images": count,
        "seconds": seconds,
        "images_per_s": count / seconds,
        "cpu_seconds": cpu,
        "cpu_ms_per_image": 1000 * cpu / count,
    }
    print(
        f"{method:<50} {count / seconds:8.1f} images/s, {row['cpu_ms_per_image']:6.2f} CPU ms/image",
        flush=True,
    )
    return row


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--per-class", type=int, default=100, help="images per class for each method (default 100)"
    )
    parser.add_argument("--workers", type=int, default=2, help="processes of the lens_hf pool (default 2)")
    parser.add_argument(
        "--preset", default="model_i", help="model_i, model_ii or model_iii (default model_i)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="results folder (default benchmarks/results)"
    )
    args = parser.parse_args(argv)
    preset = get_preset(args.preset)
    n_images = args.per_class * len(LABELS)
    machine = _machine()
    rows = []

    def timed(name: str, workers: int) -> None:
        start, cpu = time.perf_counter(), _cpu_seconds()
        count = sum(
            1 for _ in iter_simulations(preset, args.per_class, args.seed, workers=workers, progress=False)
        )
        rows.append(_row(name, workers, count, time.perf_counter() - start, _cpu_seconds() - cpu))

    # Imports (lenstronomy, astropy: ~2 s) and first-use caches are paid once, before any timing.
    for label in LABELS:
        simulate_image(preset, label, args.seed, 0)
        naive_image(preset, draw_scene(preset, label, args.seed, 0), noise_seed=0)
    timed(f"lens_hf pool ({args.workers} workers)", args.workers)
    timed("lens_hf one worker", 1)

    scenes, models = [], []
    start, cpu = time.perf_counter(), _cpu_seconds()
    for label in LABELS:
        for i in range(args.per_class):
            scene = draw_scene(preset, label, args.seed, i)
            model, _ = naive_image(preset, scene, noise_seed=len(models))
            scenes.append(scene)
            models.append(model)
    rows.append(
        _row(
            "plain lenstronomy loop (fresh objects per image)",
            1,
            n_images,
            time.perf_counter() - start,
            _cpu_seconds() - cpu,
        )
    )

    rel = [
        float(np.abs(noiseless_image(preset, s) - m).max() / np.abs(m).max()) for s, m in zip(scenes, models)
    ]
    by_method = {r["method"]: r["images_per_s"] for r in rows}
    naive_rate = rows[-1]["images_per_s"]
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python "
        + shlex.join([os.path.relpath(__file__)] + (argv if argv is not None else sys.argv[1:])),
        "machine": machine,
        "preset": preset.name,
        "per_class": args.per_class,
        "seed": args.seed,
        "rows": rows,
        "speedup_vs_plain": {name: rate / naive_rate for name, rate in by_method.items()},
        "noiseless_max_relative_difference_vs_plain": max(rel),
        "load_average_1min_at_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    _write_atomic(args.out / "simulation.json", json.dumps(result, indent=2) + "\n")

    def load(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    lines = [
        "# Simulation throughput",
        "",
        f"- date: {result['date']}",
        f"- machine: {machine['cpu_count']} CPUs ({machine['cpus_available']} available), {machine['platform']}, "
        f"{machine['processor']}; 1-min load average {load(machine['load_average_1min_at_start'])} at start, "
        f"{load(result['load_average_1min_at_end'])} at end",
        f"- versions: Python {machine['python']}, NumPy {machine['numpy']}, lenstronomy {machine['lenstronomy']}",
        f"- command: `{result['command']}`",
        f"- preset `{preset.name}`, {args.per_class} images per class ({n_images} per method), seed {args.seed}",
        f"- lens_hf noiseless images vs the plain loop: max relative difference {max(rel):.2e}",
        "- wall-clock rates depend on what else runs on the machine (see the load average); CPU ms/image "
        "(user + system, pool workers included) does not",
        "",
        "| method | workers | images | wall s | images/s | CPU ms/image | speed-up vs plain (wall) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['workers']} | {r['images']} | {r['seconds']:.2f} | {r['images_per_s']:.1f} | "
            f"{r['cpu_ms_per_image']:.2f} | {r['images_per_s'] / naive_rate:.1f}x |"
        )
    _write_atomic(args.out / "simulation.md", "\n".join(lines) + "\n")
    print(f"wrote {args.out / 'simulation.json'} and {args.out / 'simulation.md'}")
    return result


if __name__ == "__main__":
    main()
