"""The lens_hf web demo, Space-style: ``python app.py`` serves the page with the default model.

The default model is found as ``lens-hf predict`` finds it without ``--model`` (the checkout's
``checkpoints/vit-spt-lsa-model-i``, else the Hugging Face cache). ``lens-hf demo`` serves the same page with
options (``--model``, ``--host``, ``--port``, ``--share``). Gradio's own variables (``GRADIO_SERVER_NAME``,
``GRADIO_SERVER_PORT``) set where it listens, as on a Hugging Face Space.
"""

from lens_hf.demo.page import LAUNCH_OPTIONS, build_demo

demo = build_demo()  # the model is loaded once, here

if __name__ == "__main__":
    demo.launch(**LAUNCH_OPTIONS)
