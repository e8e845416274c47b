"""Simulation presets that reproduce the DeepLense Model I, II and III data sets.

Each preset is one frozen table of physical and instrumental parameters. The physics follows
DeepLenseSim (``deeplense/lens.py``): a 1e12 Msun SIE main halo with external shear, a Sersic source at
z = 1 behind a lens at z = 0.5, and either no substructure, 25 point-mass CDM subhalos or a superfluid
dark-matter vortex made of 100 point masses on a line. Model I renders the image with a plain
``ImageModel`` and DeepLenseSim's own noise recipe; Models II and III go through lenstronomy's
``SimAPI`` with the Euclid VIS and HST WFC3/F160W observation configurations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lens_hf.errors import LensHFError

# DeepLenseSim converts radians to arcsec with this rounded constant; kept so Einstein radii match it.
RAD_TO_ARCSEC_DEEPLENSE: float = 206265.0


@dataclass(frozen=True)
class SimulationPreset:
    """All parameters of one simulated data set. Angles in arcsec, masses in Msun, times in seconds."""

    name: str
    description: str
    # ---- instrument and noise
    renderer: str  # "image_model": ImageModel + DeepLenseSim noise (Model I); "sim_api": lenstronomy SimAPI
    num_pix: int  # pixels per image side
    pixel_scale: float  # arcsec per pixel (for "sim_api" it must equal the instrument's pixel_scale)
    output_dtype: str  # dtype of the stored image: "int64" photon counts or "float64" flux
    psf_fwhm: float | None = None  # arcsec, Gaussian PSF FWHM ("image_model" only)
    psf_truncation: float = 3.0  # PSF kernel half-size in units of the Gaussian sigma ("image_model" only)
    background_rms: float | None = None  # per-pixel Gaussian background, counts/s ("image_model" only)
    log10_exposure_range: tuple[float, float] | None = None  # exposure = 10**U(lo, hi) s ("image_model" only)
    instrument: str | None = None  # lenstronomy ObservationConfig class: "Euclid" or "HST" ("sim_api" only)
    instrument_band: str | None = None  # ObservationConfig band, e.g. "VIS", "WFC3_F160W"
    instrument_psf_type: str | None = None  # ObservationConfig psf_type, "GAUSSIAN"
    instrument_coadd_years: int | None = None  # ObservationConfig coadd_years (Euclid: 2-6; HST: None)
    add_noise: bool = True  # "sim_api": add SimAPI.noise_for_model (background + Poisson) to the model
    # ---- cosmology (flat LambdaCDM, no radiation) and redshifts
    H0: float = 70.0  # km/s/Mpc
    Om0: float = 0.3  # matter density today
    Ob0: float = 0.05  # baryon density today
    z_lens: float = 0.5  # main halo, subhalos and vortex
    z_source: float = 1.0  # lensed galaxy
    # DeepLenseSim hands SimAPI redshift lists and z_source_convention=2.5, which switches lenstronomy to
    # multi-plane mode: theta_E then means the deflection for a z=2.5 source, rescaled to the z=1 source.
    z_source_convention: float | None = None  # "sim_api" only; None: single-plane ImageModel
    # ---- main lens: SIE + external shear, centred
    main_halo_mass: float = 1e12  # Msun, converted to the SIE theta_E by einstein_radius()
    sie_e1: float = 0.1  # SIE ellipticity component 1
    sie_e2: float = 0.0  # SIE ellipticity component 2
    shear_gamma1: float = 0.05  # external shear component 1
    shear_gamma2: float = 0.0  # external shear component 2
    # ---- source: SERSIC_ELLIPSE, centre U(-max, max) on each axis
    source_amp: float | None = 20.0  # lenstronomy surface-brightness amplitude (Model I)
    source_magnitude: float | None = None  # apparent magnitude, converted by SimAPI (Models II, III)
    source_r_sersic: float = 0.25  # arcsec, half-light radius
    source_n_sersic: float = 1.0  # Sersic index
    source_e1: float = -0.1  # ellipticity component 1
    source_e2: float = 0.1  # ellipticity component 2
    source_center_max: float = 0.35  # arcsec, |centre_x|, |centre_y| <= this
    # ---- subhalo class: point masses, dN/dm ~ m^beta by inverse-CDF sampling
    n_subhalos: int = 25  # exactly this many per image
    subhalo_mass_min: float = 1e6  # Msun
    subhalo_mass_max: float = 1e10  # Msun
    subhalo_beta: float = -0.9  # slope of dN/dm
    subhalo_r_min: float = 0.25  # arcsec, radius ~ U(r_min, r_max), angle ~ U(0, 2 pi)
    subhalo_r_max: float = 2.0  # arcsec
    # ---- vortex class: equal point masses evenly spaced on a line through the centre, random angle
    vortex_mass: float = 3e10  # Msun, total mass of the line
    vortex_n_elements: int = 100  # point masses per vortex
    log10_axion_mass_range: tuple[float, float] = (-24.0, -22.0)  # m_a = 10**U(lo, hi) eV
    vortex_length_coeff: float = 0.06  # arcsec per 1e-22 eV: half-length = coeff / (2 m_a) * 1e-22

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of every image of this preset, in pixels."""
        return (self.num_pix, self.num_pix)


PRESETS: dict[str, SimulationPreset] = {
    "model_i": SimulationPreset(
        name="model_i",
        description='DeepLense Model I: 150x150 px at 0.05"/px, Gaussian PSF, Poisson photon counts',
        renderer="image_model",
        num_pix=150,
        pixel_scale=0.05,  # arcsec/px
        output_dtype="int64",
        psf_fwhm=0.087,  # arcsec
        psf_truncation=3.0,  # sigma
        background_rms=0.01,  # counts/s per pixel
        log10_exposure_range=(3.0, 3.5),  # log10 s
        source_amp=20.0,
        source_magnitude=None,
    ),
    "model_ii": SimulationPreset(
        name="model_ii",
        description='DeepLense Model II: 64x64 px, lenstronomy Euclid VIS (0.101"/px, seeing 0.16"), with noise',
        renderer="sim_api",
        num_pix=64,
        pixel_scale=0.101,  # arcsec/px, Euclid VIS camera
        output_dtype="float64",
        instrument="Euclid",
        instrument_band="VIS",
        instrument_psf_type="GAUSSIAN",
        instrument_coadd_years=6,
        z_source_convention=2.5,
        source_amp=None,
        source_magnitude=20.0,  # mag
    ),
    "model_iii": SimulationPreset(
        name="model_iii",
        description='DeepLense Model III: 64x64 px, lenstronomy HST WFC3/F160W (0.08"/px, seeing 0.08"), with noise',
        renderer="sim_api",
        num_pix=64,
        pixel_scale=0.08,  # arcsec/px, drizzled WFC3/IR
        output_dtype="float64",
        instrument="HST",
        instrument_band="WFC3_F160W",
        instrument_psf_type="GAUSSIAN",
        instrument_coadd_years=None,
        z_source_convention=2.5,
        source_amp=None,
        source_magnitude=20.0,  # mag
    ),
}


def get_preset(name: str | SimulationPreset) -> SimulationPreset:
    """Return the preset called ``name`` (a :class:`SimulationPreset` is passed through)."""
    if isinstance(name, SimulationPreset):
        return name
    key = str(name).strip().lower().replace("-", "_")
    if key not in PRESETS:
        raise LensHFError(f"unknown simulation preset {name!r} (choose from {', '.join(PRESETS)})")
    return PRESETS[key]


@lru_cache(maxsize=64)
def _einstein_radius_of_one_msun(z_lens: float, z_source: float, H0: float, Om0: float, Ob0: float) -> float:
    """theta_E of 1 Msun in arcsec; theta_E scales as sqrt(M)."""
    from astropy import units as u
    from astropy.constants import G, M_sun, c
    from astropy.cosmology import FlatLambdaCDM

    if not z_source > z_lens:
        raise LensHFError(f"the source (z={z_source}) must lie behind the lens (z={z_lens})")
    cosmo = FlatLambdaCDM(H0=H0, Om0=Om0, Ob0=Ob0)
    # DeepLenseSim uses luminosity distances and D_LS = D_S - D_L; kept for fidelity to its data sets.
    d_l = cosmo.luminosity_distance(z_lens).to(u.m)
    d_s = cosmo.luminosity_distance(z_source).to(u.m)
    theta = np.sqrt(4 * G * M_sun / c**2 * (d_s - d_l) / (d_l * d_s))
    return float(theta.decompose().value) * RAD_TO_ARCSEC_DEEPLENSE


def einstein_radius(
    mass_msun: float | np.ndarray,
    z_lens: float = 0.5,
    z_source: float = 1.0,
    *,
    H0: float = 70.0,
    Om0: float = 0.3,
    Ob0: float = 0.05,
) -> float | np.ndarray:
    """Einstein radius in arcsec of a point mass ``mass_msun`` (Msun, scalar or array) as DeepLenseSim computes it:
    ``sqrt(4 G M / c^2 * D_LS / (D_L D_S))`` with luminosity distances and ``D_LS = D_S - D_L``
    (1e12 Msun at z=0.5 lensing z=1 gives ~1.28")."""
    scale = _einstein_radius_of_one_msun(float(z_lens), float(z_source), float(H0), float(Om0), float(Ob0))
    mass = np.asarray(mass_msun, dtype=np.float64)
    if np.any(mass < 0) or not np.all(np.isfinite(mass)):
        raise LensHFError("masses must be finite and non-negative")
    radius = scale * np.sqrt(mass)
    return float(radius) if radius.ndim == 0 else radius


def subhalo_mass_quantile(u: float | np.ndarray, m_min: float, m_max: float, beta: float) -> np.ndarray:
    """Inverse CDF of dN/dm ~ m^beta on [m_min, m_max] (Msun) at uniform deviates ``u`` in [0, 1]."""
    if math.isclose(beta, -1.0):
        return m_min * (m_max / m_min) ** np.asarray(u, dtype=np.float64)
    lo, hi = m_min ** (beta + 1.0), m_max ** (beta + 1.0)
    return (lo + (hi - lo) * np.asarray(u, dtype=np.float64)) ** (1.0 / (beta + 1.0))


def vortex_half_length(axion_mass_ev: float | np.ndarray, coeff: float = 0.06) -> float | np.ndarray:
    """Half-length in arcsec of the vortex line for an axion mass in eV: DeepLenseSim's de Broglie law
    ``coeff / (2 m_a) * 1e-22`` (valid for a halo at z = 0.5; 3" at 1e-24 eV, 0.03" at 1e-22 eV)."""
    half = coeff * np.power(2.0 * np.asarray(axion_mass_ev, dtype=np.float64), -1.0) * 1e-22
    return float(half) if half.ndim == 0 else half


__all__ = [
    "PRESETS",
    "RAD_TO_ARCSEC_DEEPLENSE",
    "SimulationPreset",
    "einstein_radius",
    "get_preset",
    "subhalo_mass_quantile",
    "vortex_half_length",
]
