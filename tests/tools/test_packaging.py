"""What the built wheel and sdist ship: ``py.typed`` (the package is typed), the notice
template ``init`` reads, and the ``LICENSE`` file that ``pyproject.toml`` declares.

Built with the project's own build backend (hatchling) into a temporary directory, in a
child process, from this checkout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

BUILD = """
import json, sys
from hatchling.builders.sdist import SdistBuilder
from hatchling.builders.wheel import WheelBuilder
root, out = sys.argv[1], sys.argv[2]
wheel = next(WheelBuilder(root).build(directory=out, versions=["standard"]))
sdist = next(SdistBuilder(root).build(directory=out, versions=["standard"]))
print(json.dumps([wheel, sdist]))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-c", BUILD, str(ROOT), str(out)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    wheel, sdist = json.loads(proc.stdout)
    return Path(wheel), Path(sdist)


def test_the_wheel_ships_py_typed_the_notice_template_and_the_license(built):
    wheel, _ = built
    names = zipfile.ZipFile(wheel).namelist()
    assert "scarf_autoping/py.typed" in names
    assert "scarf_autoping/templates/TELEMETRY.md.tmpl" in names
    licence = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert len(licence) == 1, names
    text = zipfile.ZipFile(wheel).read(licence[0]).decode("utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_sdist_has_the_license_it_names(built):
    _, sdist = built
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    top = names[0].split("/")[0]
    assert f"{top}/LICENSE" in names
    assert f"{top}/scarf_autoping/py.typed" in names
