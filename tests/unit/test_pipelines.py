"""The pipeline registry: params validation, defaults, text coercion."""

import pytest

from tasks.pipelines import ParamsError, Pipeline, Stage, get_pipeline, register


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


def test_a_pipeline_name_is_declared_once():
    schema = {"type": "object", "properties": {}}
    with pytest.raises(ValueError, match="declared twice"):
        register(Pipeline("demo", "Again", schema, [Stage("only", lambda ctx, p, s: {})]))
