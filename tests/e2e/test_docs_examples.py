"""Every code example in README.md and docs/*.md runs as written, so the docs cannot drift.

How blocks are found, run and marked not-run is in ``docs_examples.py``; this file adds what
some pages need that the page itself does not show, and only that:

- a **setup** that makes what a page's examples talk about (docs/serving.md serves a registered
  ``fraud`` model with mixed column types and a ``churn`` model; docs/batch.md scores a folder of
  transactions; docs/mlflow.md imports an MLflow model folder), run before the page's first block;
- a **prelude** for Python snippets that use names their page defines in prose (``model``, ``X``,
  ``frame`` on docs/serving.md), prepended to that page's Python blocks;
- **rewrites** of identifiers that a real run makes up (an API key id, a batch job id) into shell
  that finds the real one;
- a **check** for the page's YAML blocks (configuration files are loaded, not run).

The whole set takes a few minutes on two cores, most of it in docs/serving.md and docs/batch.md
(servers and worker processes); the summary at the end of the session lists what ran and what is
marked not-run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from docs_examples import (
    DOC_FILES,
    REPO,
    RUNNABLE,
    SHELL,
    TALLY,
    Block,
    Command,
    MarkerError,
    PageRun,
    all_blocks,
    check_output,
    commands,
    extract,
)
from docs_models import fraud_model, transactions
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.config import Settings
from seaway.serving.config import ServeConfig

BLOCKS = all_blocks()
RUN_BLOCKS = [block for block in BLOCKS if block.lang and block.not_run is None]


# --- what pages need ----------------------------------------------------------------------------


def _registry(folder: Path) -> seaway.Registry:
    settings = Settings.resolve(home=folder / ".seaway", environ={})
    return seaway.Registry.from_settings(settings)


def _register_fraud(folder: Path, versions: int) -> pd.DataFrame:
    """``fraud`` versions 1..N of one package, ``production`` and ``staging`` on the last."""
    frame, target = transactions()
    package = seaway.save_model(
        fraud_model(frame, target), folder / "_fraud-pkg", sample_input=frame.head(20)
    )
    with _registry(folder) as registry:
        for _ in range(versions):
            version = registry.register(package.path, "fraud")
        registry.set_alias("fraud", "production", version.version)
        registry.set_alias("fraud", "staging", version.version)
    return frame


def setup_serving(folder: Path) -> None:
    _register_fraud(folder, versions=3)  # the page's answers name model_version "3"
    frame, target = transactions(seed=1)
    numeric = frame[["amount", "hour", "card_age_days"]]
    churn = seaway.save_model(
        LogisticRegression(max_iter=2000).fit(numeric, target),
        folder / "_churn-pkg",
        sample_input=numeric.head(),
    )
    with _registry(folder) as registry:
        registry.register(churn.path, "churn")
        registry.register(churn.path, "churn")  # the page serves models:/churn/2
    pd.DataFrame(
        {
            "amount": [66.4, 310.0],
            "hour": [19, 3],
            "country": ["JP", "PE"],
            "card_age_days": [1241, 12],
        }
    ).to_csv(folder / "rows.csv", index=False)
    (folder / "_page.py").write_text(SERVING_NAMES, encoding="utf-8")


#: the names docs/serving.md's snippets use without defining them (a model, its training frame)
SERVING_NAMES = f"""\
import sys

sys.path.insert(0, {str(Path(__file__).parent)!r})
from docs_models import fraud_model, transactions

X, _y = transactions()
model = fraud_model(X, _y)
frame = X.head(2)
"""

SERVING_PRELUDE = "from _page import X, frame, model  # given by tests/e2e/test_docs_examples.py\n"


def setup_batch(folder: Path) -> None:
    frame = _register_fraud(folder, versions=1)
    rows = pd.concat([frame] * 5, ignore_index=True)
    rows.insert(0, "customer", [f"c{i % 97}" for i in range(len(rows))])
    rows.insert(0, "id", np.arange(len(rows)))
    (folder / "data" / "2026-11-24").mkdir(parents=True)
    rows.to_parquet(folder / "data" / "2026-11-24" / "part-0.parquet")


def setup_loading(folder: Path) -> None:
    _register_fraud(folder, versions=1)


def setup_mlflow(folder: Path) -> None:
    """An MLflow model folder as ``mlflow.sklearn.save_model`` writes it (skops format)."""
    import skops.io
    import yaml

    frame, target = transactions()
    numeric = frame[["amount", "hour", "card_age_days"]].astype("float64")
    model = LogisticRegression(max_iter=2000).fit(numeric, target)
    src = folder / "mlruns" / "0" / "3fa2c1d0" / "artifacts" / "model"
    src.mkdir(parents=True)
    skops.io.dump(model, src / "model.skops")
    columns = [{"type": "double", "name": c, "required": True} for c in numeric.columns]
    mlmodel = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": "model.skops"},
            "sklearn": {"pickled_model": "model.skops", "serialization_format": "skops"},
        },
        "mlflow_version": "2.16.2",
        "signature": {"inputs": json.dumps(columns), "outputs": None, "params": None},
    }
    (src / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    (src / "requirements.txt").write_text("mlflow==2.16.2\nscikit-learn\n")


SETUPS: dict[str, Callable[[Path], None]] = {
    "docs/serving.md": setup_serving,
    "docs/batch.md": setup_batch,
    "docs/loading.md": setup_loading,
    "docs/mlflow.md": setup_mlflow,
}

PRELUDES: dict[str, str] = {"docs/serving.md": SERVING_PRELUDE}

_FIRST = "python -c \"import json, sys; print(json.load(sys.stdin)[0]['{key}'])\""
REWRITES: dict[str, dict[str, str]] = {
    # the key created above; its id is random
    "docs/security.md": {
        "k3v9x2ab": "$(seaway keys list --json | " + _FIRST.format(key="key_id") + ")"
    },
    # the job run above; its id is made up when it starts
    "docs/batch.md": {
        "job-20261125-3fa2c1d0": "$(seaway batch list --json | " + _FIRST.format(key="job_id") + ")"
    },
}


def check_serve_config(text: str, folder: Path) -> None:
    path = folder / "serve.yaml"
    path.write_text(text, encoding="utf-8")
    ServeConfig.load(path, {}, environ={})


def check_settings_file(text: str, folder: Path) -> None:
    path = folder / "config.yaml"
    path.write_text(text, encoding="utf-8")
    settings = Settings.resolve(home=folder / ".seaway", config_file=path, environ={})
    assert settings.registry_url.startswith("postgresql+psycopg://")


def check_deployment_spec(text: str, folder: Path) -> None:
    """A spec is written to the file its first line names (``# canary.yaml``), where the page's
    later commands read it, and must be a valid deployment spec."""
    from seaway.routing.spec import load_spec

    named = re.match(r"#\s*([\w.-]+\.ya?ml)\b", text)
    assert named, f"a deployment spec block names its file on its first line: {text[:60]!r}"
    path = folder / named.group(1)
    path.write_text(text, encoding="utf-8")
    load_spec(path)


YAML_CHECKS: dict[str, Callable[[str, Path], None]] = {
    "docs/serving.md": check_serve_config,
    "docs/configuration.md": check_settings_file,
    "docs/monitoring.md": check_serve_config,
    "docs/deployments.md": check_deployment_spec,
}


# --- running pages ------------------------------------------------------------------------------


class Pages:
    """At most one page open at a time: its servers stop before the next page starts."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.current: PageRun | None = None

    def run(self, block: Block) -> None:
        if self.current is None or self.current.page != block.page:
            self.close()
            folder = self.factory.mktemp(Path(block.page).stem)
            self.current = PageRun(
                block.page,
                folder,
                yaml_check=YAML_CHECKS.get(block.page),
                python_prelude=PRELUDES.get(block.page, ""),
                rewrites=REWRITES.get(block.page, {}),
            )
            if block.page in SETUPS:
                SETUPS[block.page](folder)
        page = self.current
        for earlier in [b for b in RUN_BLOCKS if b.page == block.page]:
            if earlier == block:
                break
            if earlier.id not in page.done and earlier.id not in page.failed:
                try:  # run as a user would have, before this one (when tests are picked with -k)
                    page.run(earlier)
                    page.done.add(earlier.id)
                except AssertionError:
                    page.failed.append(earlier.id)
        try:
            page.run(block)
        except AssertionError as exc:
            problem = str(exc)
        else:
            page.done.add(block.id)
            return
        page.failed.append(block.id)
        earlier_failed = [b for b in page.failed if b != block.id]
        note = f"\n(earlier blocks of this page failed: {earlier_failed})" if earlier_failed else ""
        pytest.fail(f"{problem}{note}", pytrace=False)

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pages]:
    opened = Pages(tmp_path_factory)
    try:
        yield opened
    finally:
        opened.close()


# --- the tests ----------------------------------------------------------------------------------


def test_every_example_runs_or_is_marked() -> None:
    """Each block has a way to run or a not-run marker with a reason; the test's own extras match
    the pages (a renamed page or a rewritten example must not leave them behind silently)."""
    pages = {path.relative_to(REPO).as_posix() for path in DOC_FILES}
    assert "README.md" in pages and "docs/serving.md" in pages
    problems = []
    for block in BLOCKS:
        if not block.lang:  # drawings, folder trees, sample output
            if any(line.startswith(("$ ", "seaway ")) for line in block.text.splitlines()):
                problems.append(f"{block.id}: a command in a block without a language")
            continue
        if block.not_run is not None:
            continue
        if block.lang not in RUNNABLE:
            problems.append(f"{block.id}: a {block.lang!r} block has no way to run and no marker")
        elif block.lang == "yaml" and block.page not in YAML_CHECKS:
            problems.append(f"{block.id}: no check for this page's yaml")
        elif block.lang in SHELL and not any(not c.skipped for c in commands(block)):
            problems.append(f"{block.id}: no command to run (mark the block not-run instead)")
    for extra in (SETUPS, PRELUDES, REWRITES, YAML_CHECKS):
        problems += [f"{page}: not a documentation page" for page in extra if page not in pages]
    for page, rewrites in REWRITES.items():
        text = (REPO / page).read_text(encoding="utf-8")
        problems += [f"{page}: {old!r} is no longer there" for old in rewrites if old not in text]
    assert not problems, "\n".join(problems)
    TALLY["not_run"].extend(
        f"{b.id}: {b.not_run}" for b in BLOCKS if b.lang and b.not_run is not None
    )


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[block.id for block in RUN_BLOCKS])
def test_example_runs(block: Block, pages: Pages) -> None:
    pages.run(block)


# --- the extraction itself ----------------------------------------------------------------------

SAMPLE = """\
# Page

<!-- not-run-command "pip install": needs the network -->
```console
$ pip install seaway
$ curl -s localhost:8080/x -d '{
    "a": 1
  }'
{"answer": 1}
$ seaway models list \\
    --json
```

<!-- not-run: needs S3 -->

```bash
seaway batch run m --input s3://x/  # the model's input
```
"""


def test_blocks_commands_and_markers_are_read(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text(SAMPLE)
    console, bash = extract(tmp_path / "page.md", "page.md")
    assert (console.id, console.lang, console.not_run) == ("page.md:4", "console", None)
    assert (bash.id, bash.not_run) == ("page.md:16", "needs S3")
    found = commands(console)
    assert [(c.line, c.skipped) for c in found] == [(5, "needs the network"), (6, None), (10, None)]
    assert found[1].output == '{"answer": 1}'  # the lines after a command, up to the next
    assert found[1].text.endswith("}'")  # a quote left open goes on to the next lines
    assert found[2].text == "seaway models list \\\n    --json"
    assert [c.text for c in commands(bash)] == [bash.text.strip()]  # an apostrophe in a comment


@pytest.mark.parametrize(
    "text",
    [
        "<!-- not-run: x -->\nSome prose.\n```bash\nls\n```\n",  # not right before a block
        "```bash\nls\n```\n<!-- not-run: x -->\n",  # no block after it
    ],
)
def test_a_stray_marker_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "page.md").write_text(text)
    with pytest.raises(MarkerError):
        extract(tmp_path / "page.md", "page.md")


def test_a_command_marker_must_match_a_command(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text('<!-- not-run-command "docker": x -->\n```bash\nls\n```\n')
    (block,) = extract(tmp_path / "page.md", "page.md")
    with pytest.raises(MarkerError, match="docker"):
        commands(block)


def test_documented_json_output_is_checked_by_shape() -> None:
    documented = Command("curl ...", 1, None, '{"model_name":"fraud","outputs":[{"data":[0,1]}]}')
    assert check_output(documented, '{"model_name": "churn", "outputs": [{"data": [1]}]}\n') is None
    assert "not shaped like" in str(check_output(documented, '{"model_name": "fraud"}'))
    assert "documented JSON" in str(check_output(documented, "Error: no such model"))
    prose = Command("seaway keys create", 1, None, "Created API key k3v9x2ab")
    assert check_output(prose, "anything") is None


def test_the_documented_helper_port_becomes_a_free_one_in_every_block(tmp_path: Path) -> None:
    """A webhook receiver an example runs on 127.0.0.1:9000 gets a free port, and the serve
    config that names it the same port: two runs of a page never fight over 9000."""
    seen: list[str] = []
    page = PageRun("page.md", tmp_path, yaml_check=lambda text, _: seen.append(text))
    url = "http://127.0.0.1:9000/alerts"
    page.run(Block("page.md", 1, "yaml", f"webhooks: [{{url: {url}}}]\n"))
    page.run(Block("page.md", 5, "python", f"# hook.py\nprint({url!r})\n"))
    (free,) = [new for old, new in page.ports.items() if old == "127.0.0.1:9000"]
    assert free != "127.0.0.1:9000"
    assert seen == [f"webhooks: [{{url: http://{free}/alerts}}]\n"]
    assert (tmp_path / "hook.py").read_text() == f"# hook.py\nprint('http://{free}/alerts')\n"
