"""Pipelines: where they are found, params validation, defaults, text coercion."""

import math

import pytest

from app.services import catalog
from app.services.catalog import get_pipeline
from tasks.pipelines import ParamsError


def test_demo_defaults_and_declared_stages():
    demo = get_pipeline("demo")
    assert demo.validate({}) == {"stages": 4, "seconds": 2, "fail_at": None, "message": ""}
    assert [s.name for s in demo.stages_for(demo.validate({"stages": 2}))] == ["step 1", "step 2"]


def test_validation_names_every_bad_field():
    with pytest.raises(ParamsError) as caught:
        get_pipeline("demo").validate({"stages": 0, "seconds": 601})
    assert caught.value.messages == [
        "seconds: 601 is greater than the maximum of 600",
        "stages: 0 is less than the minimum of 1",
    ]


def test_whole_floats_become_integers():
    assert get_pipeline("demo").validate({"stages": 3.0})["stages"] == 3


def test_text_coercion_follows_the_schema_and_blanks_mean_default():
    demo = get_pipeline("demo")
    coerced = demo.coerce({"stages": "3", "seconds": "1.5", "fail_at": "", "message": ""})
    assert coerced == {"stages": 3, "seconds": 1.5, "message": ""}
    assert demo.coerce({"stages": "x"}) == {"stages": "x"}  # left for validate() to name


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_by_name(bad):
    with pytest.raises(ParamsError) as caught:
        get_pipeline("demo").validate({"seconds": bad})
    assert caught.value.by_field == {"seconds": "must be a finite number"}
    assert get_pipeline("demo").coerce({"seconds": "NaN"})["seconds"] != 0.5  # text NaN too:
    with pytest.raises(ParamsError, match="seconds: must be a finite number"):
        get_pipeline("demo").validate(get_pipeline("demo").coerce({"seconds": "nan"}))


def _install_plugin(folder, monkeypatch, module: str, source: str, points: str) -> None:
    """A real installed distribution (a .dist-info folder on sys.path) with entry points."""
    (folder / f"{module}.py").write_text(source)
    info = folder / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[taskdeck.pipelines]\n{points}\n")
    monkeypatch.syspath_prepend(str(folder))


def test_two_pipelines_with_one_name_stop_loading_naming_both(tmp_path, monkeypatch):
    source = (
        "from tasks.pipelines import Pipeline, Stage\n"
        "again = Pipeline('demo', 'Again', {'type': 'object'}, [Stage('only', print)])\n"
    )
    _install_plugin(tmp_path, monkeypatch, "dupdemo", source, "again = dupdemo:again")
    with pytest.raises(catalog.CatalogError) as caught:
        catalog._load()
    assert "tasks.pipelines.demo:demo" in str(caught.value)
    assert "dupdemo:again" in str(caught.value)


def test_a_plugin_that_fails_to_import_is_named(tmp_path, monkeypatch):
    _install_plugin(
        tmp_path, monkeypatch, "brokenplug", "raise ImportError('no numpy')", "b = brokenplug:p"
    )
    with pytest.raises(catalog.CatalogError, match="brokenplug:p .* failed to load: no numpy"):
        catalog._load()
