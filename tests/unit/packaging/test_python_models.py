"""Python-function models as the packaging docs write them (issue 10, item 1): restored from their
artifacts before the sample is checked, a script that packages its own file, and requirements
read from the code's imports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import seaway
from seaway.cli.main import main
from seaway.errors import ModelLoadError, UnsupportedModelError
from seaway.packaging.imports import distributions_for, imported_modules
from seaway.runtime import load_package


class Lookup(seaway.PythonModel):
    """The docs' Recommender: all of its state comes from an artifact, none from __init__."""

    def load(self, context: seaway.ModelContext) -> None:
        self.table = pd.read_json(context.artifacts["table"])

    def predict(self, inputs: Any) -> Any:
        return self.table.loc[inputs["user_id"]].to_numpy()


class BrokenLoad(seaway.PythonModel):
    def load(self, context: seaway.ModelContext) -> None:
        raise KeyError("table")

    def predict(self, inputs: Any) -> Any:
        return inputs


def _table(tmp_path: Path) -> Path:
    path = tmp_path / "table.json"
    pd.DataFrame({"score": [0.1, 0.2, 0.3]}).to_json(path)
    return path


def test_the_sample_runs_through_a_model_restored_from_its_artifacts(tmp_path: Path) -> None:
    sample = pd.DataFrame({"user_id": [1, 2]})
    # the instance passed was never loaded: it has no .table, as in the docs' example
    package = seaway.save_model(
        Lookup(), tmp_path / "pkg", artifacts={"table": _table(tmp_path)}, sample_input=sample
    )
    assert [s.name for s in package.manifest.signature.outputs] == ["predict"]  # type: ignore[union-attr]
    np.testing.assert_allclose(load_package(package.path).predict(sample), [[0.2], [0.3]])


def test_a_load_that_fails_on_the_artifacts_is_named_not_blamed_on_the_sample(
    tmp_path: Path,
) -> None:
    with pytest.raises(ModelLoadError, match=r"BrokenLoad.load\(context\) failed.*KeyError"):
        seaway.save_model(BrokenLoad(), tmp_path / "pkg", sample_input=np.zeros((2, 2)))
    assert not (tmp_path / "pkg").exists()


def test_a_class_defined_in_a_function_is_refused(tmp_path: Path) -> None:
    class Local(seaway.PythonModel):
        def predict(self, inputs: Any) -> Any:
            return inputs

    with pytest.raises(UnsupportedModelError, match="inside a function"):
        seaway.save_model(Local(), tmp_path / "pkg")


SCRIPT = textwrap.dedent(
    """
    import json
    import sys
    from pathlib import Path

    import pandas as pd

    import seaway
    from helpers import shift  # a helper module packaged with code_paths

    class Recommender(seaway.PythonModel):
        def load(self, context):
            self.table = pd.read_json(context.artifacts["table"])

        def predict(self, inputs):
            return shift(self.table.loc[inputs["user_id"]].to_numpy())

    if __name__ == "__main__":
        out = Path(sys.argv[1])
        pd.DataFrame({"score": [0.1, 0.2, 0.3]}).to_json(out / "table.json")
        seaway.save_model(
            Recommender(),
            out / "pkg",
            artifacts={"table": out / "table.json"},
            code_paths=[__file__, Path(__file__).with_name("helpers.py")],
            sample_input=pd.DataFrame({"user_id": [1, 2]}),
        )
    """
)

_LOAD_ELSEWHERE = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from seaway.runtime import load_package
    model = load_package(sys.argv[1], trusted=True)
    print(model.predict(pd.DataFrame({"user_id": [0, 2]})).ravel().tolist())
    """
)


def test_a_script_that_packages_its_own_file_loads_in_any_process(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train_recs.py").write_text(SCRIPT)
    (code / "helpers.py").write_text("import numpy\n\ndef shift(x):\n    return x + 1\n")
    subprocess.run(
        [sys.executable, str(code / "train_recs.py"), str(tmp_path)],
        check=True,
        timeout=120,
        cwd=code,
    )
    package = tmp_path / "pkg"
    manifest = json.loads((package / "manifest.json").read_text())
    options = manifest["flavor_options"]
    assert (options["module"], options["script"]) == ("train_recs", True)
    assert sorted(options["code"]) == ["code/helpers.py", "code/train_recs.py"]
    # another program: __main__ there has no Recommender, and helpers is only in the package
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_ELSEWHERE, str(package)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [1.1, 1.3]
    # requirements come from what the code imports: pandas (script) and numpy (helper), not the
    # standard library, Seaway, or the packaged helper module
    names = [line.partition("==")[0] for line in manifest["requirements"]]
    assert names == ["numpy", "pandas"]
    assert f"pandas=={metadata.version('pandas')}" in manifest["requirements"]


def test_imports_map_to_distributions_only_where_that_is_reliable(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import os, json\nimport numpy as np\nfrom sklearn.base import clone\nfrom . import x\n"
        "import seaway\nimport helpers\nimport no_such_module_anywhere\n"
        "def load():\n    import pandas\n"
    )
    modules = imported_modules([source])
    assert {"os", "numpy", "sklearn", "pandas", "helpers"} <= modules
    assert distributions_for(modules, exclude={"helpers"}) == ["numpy", "pandas", "scikit-learn"]


def test_show_says_when_no_requirements_were_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "plain.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import seaway

            class Echo(seaway.PythonModel):
                def predict(self, inputs):
                    return inputs

            if __name__ == "__main__":
                seaway.log_model(Echo(), "echo", sample_input=[[1.0]])
            """
        )
    )
    subprocess.run([sys.executable, str(script)], check=True, timeout=120, cwd=tmp_path)
    assert main(["models", "show", "echo/1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "requirements none recorded" in out
