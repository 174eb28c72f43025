"""Run example scripts one after another in this interpreter, each as ``python SCRIPT``
would run it, and record what each printed and how it ended.

    python _run_examples.py EXAMPLES_DIR SPEC.json

``SPEC.json`` lists ``{"script", "args", "out"}``. Each script runs as ``__main__``
(``runpy.run_path``) with ``sys.argv = [script, *args]``, from its own ``out`` folder,
with its standard output and error written to ``out/stdout.txt`` and ``out/stderr.txt``
and its exit status to ``out/returncode`` (an uncaught exception is 1, its traceback on
its standard error). A failing script does not stop the ones after it.

Why one interpreter: importing JAX, Flax, scikit-learn and matplotlib and compiling the
same small eager operations again took about 3.5 CPU seconds per script. Scripts share an
interpreter only with scripts that set JAX's global configuration the same way
(``test_examples.py`` groups them); each still starts from a fresh module namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import sys
import traceback
from pathlib import Path


def run_one(examples: Path, script: str, args: list[str], out: Path) -> int:
    """Run ``script`` as ``__main__`` with ``args`` from ``out``; its exit status."""
    sys.argv = [str(examples / script), *args]
    os.chdir(out)
    with (
        open(out / "stdout.txt", "w") as stdout,
        open(out / "stderr.txt", "w") as stderr,
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
        except SystemExit as exit_:
            code = exit_.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        except BaseException:
            traceback.print_exc()
            return 1
        finally:
            _close_figures()
    return 0


def _close_figures() -> None:
    """A script's figures are not the next one's."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def main() -> None:
    examples, spec = Path(sys.argv[1]).resolve(), json.loads(Path(sys.argv[2]).read_text())
    sys.path.insert(0, str(examples))  # what ``python SCRIPT`` puts first
    for run in spec:
        out = Path(run["out"])
        code = run_one(examples, run["script"], run["args"], out)
        (out / "returncode").write_text(str(code))


if __name__ == "__main__":
    main()
