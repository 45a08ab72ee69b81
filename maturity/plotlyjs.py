"""The plotly.js the dashboard's graphs load: plotly.js's own *basic* bundle instead of the full one.

Dash's `dcc.Graph` loads the full plotly.js that plotly.py ships (4.8 MB: maps, 3-D, WebGL …) the first time a
page shows a graph; evaluating it was a first visit's longest main-thread task (820-1,260 ms of CPU here). Every
trace the pages draw is a bar or a scatter (the overview's matrix is drawn with bars), and plotly.js publishes a
bundle of just those and pie on npm, `plotly.js-basic-dist-min` (1.2 MB), for each plotly.js version. Served with
V8's compile hint (`COMPILE_HINT`), its evaluation takes 17-30 ms of CPU; the *cartesian* bundle (heatmap, box,
contour … as well, 1.5 MB) took 175-230 ms with the hint, 270-430 without (headless Chromium 156, the bundle
alone in a fresh context, 4 runs each): its Node polyfills throw and catch six errors at load, and for each
V8 parses again the one function the whole bundle is (trace: V8.CollectSourcePositions, 26 calls).

The bundle is not in git. `python -m maturity.plotlyjs` (bin/_venv.sh runs it after installing the project)
fetches the package of the version plotly.py's own bundle has, with npm, checks it against the sha512
integrity pinned in `INTEGRITY`, and writes the one script to `layouts/vendor/`. `maturity.app` serves it at
the address the graphs ask for when it is there and of plotly.py's version; otherwise (no npm, a plotly.py
whose version is not pinned here yet) the graphs load the full bundle: slower, the same drawing.
"""
from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import layouts

PACKAGE = "plotly.js-basic-dist-min"
MEMBER = "package/plotly-basic.min.js"  # the script inside the npm tarball
# sha512 of the npm tarball per plotly.js version (`npm view plotly.js-basic-dist-min@<v> dist.integrity`);
# add a line when plotly.py moves to a new plotly.js
INTEGRITY = {
    "4.1.1": "sha512-1oNF8PeQx2hv/y7tqEVWKD3JGwn/MGEMQ8mL9HUwsaqG9FGy/OU5FHUHvzqbqxN4mnwZGI9abTiE775C4kkjMQ==",
}
# the trace types the bundle holds (its README); a figure of another type would draw nothing
TRACES = frozenset({"bar", "pie", "scatter"})
FOLDER = Path(layouts.__file__).resolve().parent / "vendor"
NPM_TIMEOUT_S = 300
# V8's explicit compile hint (Chrome 136+; a plain comment elsewhere): compile every function of the script while
# it streams in, off the main thread. The bundle's code sits in one function that runs once at load, which V8
# otherwise compiles lazily on the main thread at that call: the basic bundle's evaluation took 108-139 ms of CPU
# without the hint and 17-31 ms with it (headless Chromium 156, the bundle alone in a fresh context, 4 runs).
COMPILE_HINT = b"//# allFunctionsCalledOnLoad\n"


def plotly_version() -> str:
    """The plotly.js version of plotly.py's bundle (the figures' JSON is written for it)."""
    from plotly.offline import get_plotlyjs_version

    return str(get_plotlyjs_version())


def bundle_path(version: str) -> Path:
    return FOLDER / f"plotly-basic-{version}.min.js"


def installed() -> Path | None:
    """The fetched bundle of plotly.py's plotly.js version, or None (the graphs then load the full bundle)."""
    path = bundle_path(plotly_version())
    return path if path.is_file() else None


def served(path: Path) -> bytes:
    """The script as the dashboard sends it: the bundle with COMPILE_HINT as its first line."""
    return COMPILE_HINT + path.read_bytes()


def check(tarball: bytes, version: str) -> None:
    """Raise ValueError unless `tarball` is the npm package pinned for `version`."""
    want = INTEGRITY.get(version)
    if want is None:
        raise ValueError(f"no sha512 pinned for {PACKAGE}@{version} in maturity/plotlyjs.py INTEGRITY")
    got = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if got != want:
        raise ValueError(f"{PACKAGE}@{version}: tarball integrity {got} is not the pinned {want}")


def extract(tarball: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            raise ValueError(f"{PACKAGE}: no {MEMBER} in the package")
        return member.read()


def fetch(version: str | None = None) -> Path:
    """`npm pack` the bundle of `version` (default plotly.py's), check it, write it to FOLDER; return its path."""
    version = version or plotly_version()
    path = bundle_path(version)
    if path.is_file():
        return path
    if version not in INTEGRITY:  # before any download: nothing unchecked is fetched
        check(b"", version)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", f"{PACKAGE}@{version}", "--pack-destination", tmp, "--silent"],
                              capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
        if done.returncode:
            said = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"npm pack {PACKAGE}@{version} failed: {said}")
        packed = next(Path(tmp).glob("*.tgz"), None)
        if packed is None:
            raise RuntimeError(f"npm pack {PACKAGE}@{version} wrote no tarball")
        tarball = packed.read_bytes()
    check(tarball, version)
    FOLDER.mkdir(exist_ok=True)
    part = path.with_suffix(".part")
    part.write_bytes(extract(tarball))
    part.replace(path)  # whole or not at all: the server never serves half a script
    return path


def main(argv: list[str] | None = None) -> int:
    """Fetch the bundle, one line on stderr; a failure says why and that the graphs load the full bundle (exit 0:
    the dashboard works without it). `--quiet-if-present`: no line when it is already there (bin/_venv.sh)."""
    argv = sys.argv[1:] if argv is None else argv
    if "--quiet-if-present" in argv and installed() is not None:
        return 0
    print("fetching the graphs' plotly.js (basic bundle, npm) ... ", end="", file=sys.stderr, flush=True)
    try:
        path = fetch()
    except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
        print(f"skipped ({exc}): the graphs load plotly.py's full bundle", file=sys.stderr)
        return 0
    print(f"done ({path.name})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
