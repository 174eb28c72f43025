"""Extract the NIST StRD nonlinear regression problems into ``nist_strd.json``.

Source of every number: NIST's Statistical Reference Datasets, nonlinear regression,
https://www.itl.nist.gov/div898/strd/nls/nls_main.shtml, the 27 files
``https://www.itl.nist.gov/div898/strd/nls/data/<Name>.dat`` (public domain, U.S.
Government work). The copies read here are the verbatim NIST files that the Ceres Solver
repository redistributes (github.com/ceres-solver/ceres-solver, ``data/nist/*.dat``,
commit ea1170485, the import of the NIST files; a later Ceres commit
edits Roszman1's certified b1 to fit its own model, so that one is not used); each file keeps NIST's own header
(``NIST/ITL StRD``, dataset name, line numbers of the tables) and the parser checks it.

From each file: the level of difficulty ("Lower/Average/Higher Level of Difficulty"), the
two starting points ("Start 1", "Start 2"), the certified parameter values and standard
deviations, the certified residual sum of squares, and the data (response ``y``, then the
predictor ``x``; Nelson has two predictors ``x1, x2``). Numbers are kept as NIST prints
them (parsed by Python's ``float``, written by ``json`` with ``repr``: exact float64).

Usage: ``python tests/golden/generate_nist.py DIR`` with ``DIR`` holding the ``.dat`` files.
The models themselves are in ``tests/full_batch/_nist_models.py`` (NIST's "Model:" lines).
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

OUT = pathlib.Path(__file__).with_name("nist_strd.json")
NAMES = ["Misra1a", "Chwirut2", "Chwirut1", "Lanczos3", "Gauss1", "Gauss2", "DanWood",
         "Misra1b", "Kirby2", "Hahn1", "Nelson", "MGH17", "Lanczos1", "Lanczos2", "Gauss3",
         "Misra1c", "Misra1d", "Roszman1", "ENSO", "MGH09", "Thurber", "BoxBOD", "Rat42",
         "MGH10", "Eckerle4", "Rat43", "Bennett5"]  # fmt: skip


def parse(text: str, name: str) -> dict:
    lines = text.splitlines()
    assert lines[0].strip() == "NIST/ITL StRD", name
    assert re.search(rf"Dataset Name:\s+{name}\b", lines[1]), name
    level = re.search(r"(Lower|Average|Higher) Level of Difficulty", text).group(1).lower()
    start1, start2, certified, sd = [], [], [], []
    for line in lines:
        m = re.match(r"\s*b(\d+)\s*=\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", line)
        if m:
            assert int(m.group(1)) == len(start1) + 1, (name, line)
            start1.append(float(m.group(2)))
            start2.append(float(m.group(3)))
            certified.append(float(m.group(4)))
            sd.append(float(m.group(5)))
    rss = float(re.search(r"Residual Sum of Squares:\s+(\S+)", text).group(1))
    n_obs = int(re.search(r"Number of Observations:\s+(\d+)", text).group(1))
    data_at = next(i for i, line in enumerate(lines) if line.startswith("Data:") and "y" in line
                   and "Response" not in line)  # fmt: skip
    rows = [[float(v) for v in line.split()] for line in lines[data_at + 1 :] if line.strip()]
    assert len(rows) == n_obs, (name, len(rows), n_obs)
    columns = list(zip(*rows, strict=True))
    predictors = [list(c) for c in columns[1:]]
    return {
        "level": level,
        "start1": start1,
        "start2": start2,
        "certified": certified,
        "certified_sd": sd,
        "certified_rss": rss,
        "y": list(columns[0]),
        "x": predictors[0] if len(predictors) == 1 else predictors,
    }


def main(folder: str) -> None:
    problems = {n: parse((pathlib.Path(folder) / f"{n}.dat").read_text(), n) for n in NAMES}
    source = ("NIST StRD nonlinear regression, https://www.itl.nist.gov/div898/strd/nls/data/"
              "<Name>.dat (verbatim copies from ceres-solver data/nist @ ea1170485); "
              "extracted by tests/golden/generate_nist.py")  # fmt: skip
    lines = [f"  {json.dumps(n)}: {json.dumps(p)}" for n, p in problems.items()]  # one a line
    body = ",\n".join(lines)
    OUT.write_text(f'{{"source": {json.dumps(source)},\n "problems": {{\n{body}\n}}}}\n')
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/nist")
