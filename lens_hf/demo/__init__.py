"""The web demo: a Gradio page that classifies lensing files with a lens_hf model.

``lens-hf demo`` and ``python app.py`` serve it. :mod:`lens_hf.demo.analysis` computes what the page shows
(it needs no Gradio); :mod:`lens_hf.demo.page` lays it out (``pip install "lens_hf[demo]"`` brings Gradio).
"""

from lens_hf.demo.analysis import EXAMPLES, FileResult, LensDemo

__all__ = ["EXAMPLES", "FileResult", "LensDemo"]
