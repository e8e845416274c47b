"""Take docs/demo.png: the web demo with the shipped model, after uploading the bundled examples, as headless
Chromium shows it.

    python docs/make_demo_screenshot.py            # writes docs/demo.png
    python docs/make_demo_screenshot.py --out x.png --examples vortex

Needs the test extras (gradio, selenium) and Debian's chromium + chromium-driver.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
RESULT_XPATH = "//*[contains(@class, 'lens-result') and not(ancestor::*[contains(@class, 'lens-result')])]"


def main(argv: list[str] | None = None) -> int:
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from lens_hf.demo.analysis import EXAMPLES
    from lens_hf.demo.page import LAUNCH_OPTIONS, build_demo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "demo.png"), help="PNG to write")
    parser.add_argument(
        "--examples", nargs="+", default=list(EXAMPLES), choices=list(EXAMPLES), help="examples to upload"
    )
    parser.add_argument("--width", type=int, default=1280, help="browser window width, px")
    args = parser.parse_args(argv)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    blocks = build_demo()  # the default model: the shipped checkpoint
    blocks.launch(server_port=port, prevent_thread_lock=True, quiet=True, **LAUNCH_OPTIONS)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={args.width},900",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}")
        upload = WebDriverWait(driver, 60).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#lens-files input[type='file']")
        )[0]
        upload.send_keys("\n".join(str(EXAMPLES[name]) for name in args.examples))
        WebDriverWait(driver, 60).until(
            lambda d: (
                len(d.find_elements(By.XPATH, RESULT_XPATH)) == len(args.examples)
                and all(
                    img.get_attribute("complete") and int(img.get_attribute("naturalWidth") or 0) > 0
                    for img in d.find_elements(By.CSS_SELECTOR, ".lens-result img")
                )
            )
        )
        for _ in range(5):  # grow the window to the whole page (a taller window may reflow it)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            if driver.execute_script("return window.innerHeight") >= height:
                break
            chrome = driver.execute_script("return window.outerHeight - window.innerHeight")
            driver.set_window_size(args.width, height + chrome)
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()
        blocks.close()
    # 256 colours are plenty for a page of flat colours and colour-mapped images, at a quarter of the bytes.
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
