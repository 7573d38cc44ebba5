"""The README's runnable engine example runs and prints what it says."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_engine_example_runs_as_documented():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(block for block in blocks if "nda_scores(" in block)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "README.md", "exec"), {})
    assert printed.getvalue().strip() == "tensor([0, 1])"


def test_fresh_machine_commands_are_stated():
    text = README.read_text()
    assert 'pip install . && diffusers-attr demo' in text
    assert 'pip install -e ".[test]" && python -m pytest' in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]" && python -m pytest' in ci


def test_quickstart_runs_as_documented(tmp_path, monkeypatch):
    """The Python quickstart, as written, on the embedded model: the index it names matches the model."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(block for block in blocks if "AttributedPipeline(" in block)
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "README.md", "exec"), {})
    assert printed.getvalue().startswith("digits-")
    assert (tmp_path / "run" / "image-000.png").is_file() and (tmp_path / "run" / "index.html").is_file()


def test_names_the_readme_uses_are_importable_where_it_says():
    import diffusers_attr
    from diffusers_attr.training import digits_ddpm_path

    text = README.read_text()
    for name in ("attribute_images", "C2PASigner", "read_attribution", "AttributedPipeline", "AttributionIndex"):
        assert name in text
        assert callable(getattr(diffusers_attr, name))
    assert (digits_ddpm_path() / "model_index.json").is_file() and "digits_ddpm_path()" in text
    assert "examples/" in text and all(f"`{p.name}`" in text for p in (README.parent / "examples").glob("*.py"))
