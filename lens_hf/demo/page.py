"""The Gradio page of the web demo (``lens-hf demo``, ``python app.py``).

Drop lensing files or pick a bundled example; each file gets its image (asinh stretch), the class probabilities
(``gr.Label``, and to 4 decimals as ``lens-hf predict`` prints them) or a regression model's value in physical
units, and the attention map over the region the model sees. A bad file gets ``lens-hf``'s one-line message in
its place. The page works offline: no analytics, no share link unless asked for, fonts served by the app.
"""

from __future__ import annotations

import os
import socket

# Gradio reads this when it is imported: no usage statistics are sent from the demo.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from lens_hf.demo.analysis import EXAMPLES, FileResult, LensDemo  # noqa: E402
from lens_hf.errors import LensHFError  # noqa: E402
from lens_hf.processing.file_io import SUFFIXES  # noqa: E402

TITLE = "lens_hf: dark matter substructure in strong lenses"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_FILE_SIZE = "256mb"  # an upload larger than this is refused before it is stored (images are < 128 MiB)
CSS = """
.lens-error { color: var(--error-text-color); font-family: var(--font-mono); }
"""
# How every launch serves the page: no server-side rendering (it would need Node.js), uploads capped.
LAUNCH_OPTIONS: dict = {"ssr_mode": False, "max_file_size": MAX_FILE_SIZE, "css": CSS}
# Markdown characters escaped in file names shown on the page.
_MARKDOWN_SPECIAL = "\\`*_{}[]()<>#+-.!|~"


def escape_markdown(text: str) -> str:
    """``text`` shown literally in Markdown (file names may hold ``*``, ``_``, ``<``...)."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in text)


def show_result(result: FileResult) -> None:
    """The components of one file's result, inside the current Blocks context."""
    with gr.Group(elem_classes=["lens-result"]):
        gr.Markdown(f"#### {escape_markdown(result.name)}", elem_classes=["lens-name"])
        if result.error is not None:
            gr.Markdown(escape_markdown(result.error), elem_classes=["lens-error"])
            return
        with gr.Row(equal_height=False):
            gr.Image(
                result.image, label="image (asinh stretch)", interactive=False, elem_classes=["lens-image"]
            )
            if result.attention is not None:
                gr.Image(
                    result.attention,
                    label="attention map over what the model sees",
                    interactive=False,
                    elem_classes=["lens-attention"],
                )
            else:
                gr.Markdown(escape_markdown(result.note or ""), elem_classes=["lens-note"])
            with gr.Column():
                if result.probabilities is not None:
                    gr.Label(
                        result.probabilities,
                        num_top_classes=len(result.probabilities),
                        label="class probabilities",
                        elem_classes=["lens-label"],
                    )
                gr.Markdown(escape_markdown(result.summary), elem_classes=["lens-summary"])


def build_demo(model: str | os.PathLike | None = None) -> gr.Blocks:
    """The page for ``model`` (a folder or Hub id; None: the default model, found as ``lens-hf predict``
    finds it). The model is loaded once, here: one pipeline serves every request."""
    demo = LensDemo.from_model(model)

    def analyse(paths: list[str] | None) -> list[FileResult]:
        return demo.analyse(paths or [])

    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        gr.Markdown(f"## {TITLE}\n{demo.describe()}")
        files = gr.File(
            file_count="multiple",
            label="Lensing images: " + " ".join(SUFFIXES) + " (DeepLense [image, m_a] arrays too)",
            elem_id="lens-files",
        )
        gr.Examples(
            examples=[[[str(path)]] for path in EXAMPLES.values()],
            inputs=[files],
            example_labels=[f"simulated Model I: {label}" for label in EXAMPLES],
            label="Or pick a simulated example",
        )
        results = gr.State([])
        files.change(analyse, inputs=files, outputs=results, concurrency_limit=1)

        @gr.render(inputs=results)
        def show(items: list[FileResult]) -> None:
            for result in items:
                show_result(result)

    return blocks


def check_address(host: str, port: int) -> None:
    """Refuse, in one line, an address the page could not be served on (port taken, unknown host)."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself binds
            probe.bind(address)
    except OSError as err:
        reason = err.strerror or str(err)
        raise LensHFError(
            f"{host}:{port}: cannot serve the demo there ({reason}); choose another --host or --port"
        ) from None


def launch(
    model: str | os.PathLike | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    share: bool = False,
    block: bool = True,
) -> gr.Blocks:
    """Build the page and serve it on ``host``:``port`` (a public share link only with ``share``). With
    ``block=False`` return once the server runs (close it with ``.close()``). An address that cannot be
    listened on is refused (:class:`LensHFError`) before the model is loaded."""
    check_address(host, port)
    blocks = build_demo(model)
    blocks.launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=not block,
        quiet=not block,
        **LAUNCH_OPTIONS,
    )
    return blocks


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "LAUNCH_OPTIONS",
    "build_demo",
    "escape_markdown",
    "launch",
    "show_result",
]
