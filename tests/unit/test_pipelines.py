"""Pipelines: the authoring API, where they are found, params validation and text coercion."""

import math
import sys
import textwrap

import pytest

from app.services import catalog
from app.services.catalog import get_pipeline, validate_params
from app.services.errors import ParamsError
from tasks.pipelines import Params, Pipeline
from tasks.pipelines.commands import render_argv
from tasks.pipelines.sources import LoadError, load


def test_demo_defaults_and_planned_stages():
    demo = get_pipeline("demo")
    assert validate_params(demo, {}) == {
        "stages": 4,
        "seconds": 2.0,
        "fail_at": None,
        "message": "",
    }
    assert [s.name for s in demo.stages_for({"stages": 2})] == ["step 1", "step 2"]
    assert demo.describe()["stages"] == ["step 1", "step 2", "step 3", "step 4"]


def test_validation_names_every_bad_field():
    with pytest.raises(ParamsError) as caught:
        validate_params(get_pipeline("demo"), {"stages": 0, "seconds": 601})
    assert caught.value.messages == [
        "seconds: 601 is greater than the maximum of 600",
        "stages: 0 is less than the minimum of 1",
    ]


def test_unknown_params_and_cross_field_rules_are_named():
    demo = get_pipeline("demo")
    with pytest.raises(ParamsError) as caught:
        validate_params(demo, {"stages": 3, "fail_at": 7, "colour": "red"})
    assert caught.value.by_field == {
        "fail_at": "7 is beyond the last stage (3)",
        "params": "Additional properties are not allowed ('colour' was unexpected)",
    }


def test_whole_floats_become_integers():
    assert validate_params(get_pipeline("demo"), {"stages": 3.0})["stages"] == 3


def test_text_coercion_blanks_mean_default_and_text_takes_the_declared_type():
    demo = get_pipeline("demo")
    coerced = demo.coerce({"stages": "3", "seconds": "1.5", "fail_at": "", "message": ""})
    assert validate_params(demo, coerced) == {
        "stages": 3,
        "seconds": 1.5,
        "fail_at": None,
        "message": "",
    }
    with pytest.raises(ParamsError, match="stages: 'x' is not of type 'integer'"):
        validate_params(demo, demo.coerce({"stages": "x"}))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_by_name(bad):
    demo = get_pipeline("demo")
    with pytest.raises(ParamsError) as caught:
        validate_params(demo, {"seconds": bad})
    assert caught.value.by_field == {"seconds": "must be a finite number"}
    typed = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
    text = next(name for name, value in typed.items() if repr(value) == repr(bad))
    with pytest.raises(ParamsError, match="seconds: must be a finite number"):
        validate_params(demo, demo.coerce({"seconds": text}))  # form text too


def test_json_numbers_must_be_numbers_not_text():
    with pytest.raises(ParamsError, match="stages: '3' is not of type 'integer'"):
        validate_params(get_pipeline("demo"), {"stages": "3"})


def test_the_published_schema_flattens_optional_params():
    fail_at = get_pipeline("demo").params_schema["properties"]["fail_at"]
    assert fail_at["type"] == ["integer", "null"] and fail_at["maximum"] == 20


def test_a_stage_asking_for_something_that_is_not_an_earlier_stage_fails_at_import():
    pipe = Pipeline("typo", params=Params)

    @pipe.stage()
    def first(ctx, params):
        return {}

    with pytest.raises(TypeError, match="takes 'frist', which is not an earlier stage"):

        @pipe.stage()
        def second(ctx, params, frist):
            return {}

    @pipe.stage()
    def third(ctx, params, first):
        return {"got": first}

    assert [s.name for s in pipe.stages_for({})] == ["first", "third"]
    assert pipe.declared[1].inputs == ("first",)


def _write(folder, name, source):
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def test_a_folder_plugin_is_loaded_and_its_imports_are_not_counted_twice(tmp_path):
    _write(
        tmp_path,
        "mine.py",
        """
        from tasks.pipelines import Params, Pipeline
        from tasks.pipelines.demo import demo  # imported, not declared here

        class MineParams(Params):
            path: str = "音频.wav"

        mine = Pipeline("mine", title="Mine", params=MineParams)

        @mine.stage(isolated=True, timeout=5, retries=2)
        def only(ctx, params):
            return {"path": params.path}
        """,
    )
    found = load([str(tmp_path)], None)
    assert found["mine"].source == str(tmp_path / "mine.py")
    stage = found["mine"].declared[0]
    assert (stage.in_child, stage.timeout, stage.retries) == (True, 5, 2)
    assert found["demo"].source.startswith("tasks.pipelines.demo:demo")


def test_a_plugin_file_may_import_a_helper_module_beside_it(tmp_path):
    _write(tmp_path, "wordhelpers.py", "def shout(text):\n    return text.upper() + '！'\n")
    _write(
        tmp_path,
        "uses_helper.py",
        """
        from wordhelpers import shout
        from tasks.pipelines import Pipeline

        loud = Pipeline("loud", title=shout("loud"))
        """,
    )
    assert load([str(tmp_path)], None)["loud"].title == "LOUD！"


def test_a_plugin_file_that_fails_to_import_is_named_with_its_line(tmp_path):
    broken = _write(tmp_path, "broken.py", "x = 1\nimport numpy_that_is_not_here\n")
    with pytest.raises(LoadError) as caught:
        load([str(tmp_path)], None)
    message = str(caught.value)
    assert str(broken) in message and "ModuleNotFoundError" in message and "(line 2)" in message
    assert "Traceback" not in message


def test_two_pipelines_with_one_name_are_an_error_naming_both_files(tmp_path):
    source = """
    from tasks.pipelines import Pipeline
    same = Pipeline("same")

    @same.stage()
    def only(ctx, params):
        return {}
    """
    _write(tmp_path, "a.py", source)
    _write(tmp_path, "b.py", source)
    with pytest.raises(LoadError) as caught:
        load([str(tmp_path)], None)
    assert str(tmp_path / "a.py") in str(caught.value) and str(tmp_path / "b.py") in str(
        caught.value
    )


def _install_plugin(folder, monkeypatch, module: str, source: str, points: str) -> None:
    """A real installed distribution (a .dist-info folder on sys.path) with entry points."""
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    info = folder / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[taskdeck.pipelines]\n{points}\n")
    monkeypatch.syspath_prepend(str(folder))


def test_an_entry_point_plugin_named_like_a_builtin_is_refused_naming_both(tmp_path, monkeypatch):
    source = """
    from tasks.pipelines import Pipeline
    again = Pipeline("demo")
    """
    _install_plugin(tmp_path, monkeypatch, "dupdemo", source, "again = dupdemo:again")
    with pytest.raises(catalog.CatalogError) as caught:
        load([], None)
    assert "tasks.pipelines.demo:demo" in str(caught.value)
    assert "dupdemo:again" in str(caught.value)
    sys.modules.pop("dupdemo", None)


def test_an_entry_point_that_fails_to_import_is_named(tmp_path, monkeypatch):
    _install_plugin(
        tmp_path, monkeypatch, "brokenplug", "raise ImportError('no numpy')", "b = brokenplug:p"
    )
    with pytest.raises(catalog.CatalogError, match="brokenplug:p .* failed to load: .*no numpy"):
        load([], None)


COMMANDS = """
[pipelines.thumbs]
title = "Make thumbnails"
params.folder = { type = "string", title = "Folder" }
params.size = { type = "integer", default = 256, minimum = 16, maximum = 4096 }

[[pipelines.thumbs.stages]]
name = "resize"
argv = ["python3", "-m", "thumbs", "{folder}", "--size={size}"]
timeout = 600
cancel_grace = 5
"""


def test_a_commands_file_declares_isolated_command_pipelines(tmp_path):
    path = tmp_path / "commands.toml"
    path.write_text(COMMANDS, encoding="utf-8")
    thumbs = load([], str(path))["thumbs"]
    (stage,) = thumbs.stages_for({"folder": "x"})
    assert (stage.name, stage.in_child, stage.timeout, stage.cancel_grace) == (
        "resize",
        True,
        600,
        5,
    )
    with pytest.raises(ParamsError, match="size: 8 is less than the minimum of 16"):
        validate_params(thumbs, {"folder": "a", "size": 8})
    params = validate_params(thumbs, {"folder": "my photos; rm -rf /"})
    # No shell: a value stays inside the one argv element it was written in.
    assert render_argv(stage.argv, params) == [
        "python3",
        "-m",
        "thumbs",
        "my photos; rm -rf /",
        "--size=256",
    ]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[pipelines.x]\nstages = []\n", "declares no [[stages]]"),
        ('[pipelines.x]\n[[pipelines.x.stages]]\nargv = ["echo", "{nope}"]\n', "undeclared param"),
        ('[pipelines.x]\nshell = true\n[[pipelines.x.stages]]\nargv = ["a"]\n', "unknown key"),
        ("[pipelines.x\n", "not valid TOML"),
        ('[pipelines.x]\n[[pipelines.x.stages]]\nargv = ["a"]\ntimeout = "10"\n', "timeout must"),
        ('[pipelines.x]\n[[pipelines.x.stages]]\nargv = ["a"]\nretries = 1.5\n', "whole number"),
        ('[pipelines.x]\n[[pipelines.x.stages]]\nname = 5\nargv = ["a"]\n', "Stage name 5"),
        (
            '[pipelines.x]\n[[pipelines.x.stages]]\nname = "run"\nargv = ["a"]\n'
            '[[pipelines.x.stages]]\nname = "run"\nargv = ["b"]\n',
            "declares stage 'run' twice",
        ),
        (
            '[pipelines.x]\nparams.p = { type = "string" }\n'
            '[[pipelines.x.stages]]\nargv = ["{p}"]\n',
            "the program, cannot come from a param",
        ),
        (
            '[pipelines.x]\nparams.n = { type = "integer", default = "ten" }\n'
            '[[pipelines.x.stages]]\nargv = ["a"]\n',
            "valid integer",
        ),
    ],
)
def test_a_bad_commands_file_stops_loading_naming_the_file(tmp_path, text, complaint):
    path = tmp_path / "commands.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LoadError) as caught:
        load([], str(path))
    assert str(path) in str(caught.value) and complaint in str(caught.value)


def test_list_params_travel_through_a_form_as_json(tmp_path):
    _write(
        tmp_path,
        "lists.py",
        """
        from tasks.pipelines import Params, Pipeline

        class ListParams(Params):
            names: list[str] = ["默认"]

        lists = Pipeline("lists", params=ListParams)
        """,
    )
    lists = load([str(tmp_path)], None)["lists"]
    assert validate_params(lists, lists.coerce({"names": '["甲", "乙"]'})) == {
        "names": ["甲", "乙"]
    }
    with pytest.raises(ParamsError, match="names"):
        validate_params(lists, lists.coerce({"names": "甲, 乙"}))


def test_a_text_param_that_begins_an_argument_cannot_smuggle_in_an_option(tmp_path):
    path = tmp_path / "commands.toml"
    path.write_text(
        '[pipelines.finder]\nparams.dir = { type = "string" }\n'
        '[[pipelines.finder.stages]]\nargv = ["find", "{dir}", "-name", "*.log"]\n',
        encoding="utf-8",
    )
    finder = load([], str(path))["finder"]
    with pytest.raises(ParamsError, match="dir: must not start with '-'"):
        validate_params(finder, {"dir": "-delete"})
    assert validate_params(finder, {"dir": "日志/-x"}) == {"dir": "日志/-x"}


def test_the_codes_the_lean_worker_modules_spell_are_the_decks_codes():
    from app import constants
    from tasks import child, context

    assert context.ArtifactRefused("x").code == constants.ERR_ARTIFACT_NAME
    assert (
        context.ArtifactRefused("x", "artifact_too_large").code == constants.ERR_ARTIFACT_TOO_LARGE
    )
    assert (child.BAD_OUTPUT, child.STAGE_ERROR, child.EXIT_STATUS) == (
        constants.ERR_BAD_OUTPUT,
        constants.ERR_STAGE_RAISED,
        constants.ERR_EXIT_STATUS,
    )


def test_a_planned_pipeline_with_required_params_still_describes_itself(tmp_path):
    _write(
        tmp_path,
        "planned.py",
        """
        from pydantic import Field
        from tasks.pipelines import Params, Pipeline

        class Counted(Params):
            count: int = Field(ge=1)

        planned = Pipeline("planned", params=Counted)

        @planned.stage()
        def part(ctx, params):
            return {}

        @planned.plan
        def parts(params, declared):
            return [declared[0].named(f"part {i}") for i in range(params.count)]
        """,
    )
    planned = load([str(tmp_path)], None)["planned"]
    assert planned.describe()["stages"] == ["part"]
    assert [s.name for s in planned.stages_for({"count": 2})] == ["part 0", "part 1"]


def test_a_secret_param_is_refused_when_the_pipeline_is_declared():
    from pydantic import SecretStr

    class Login(Params):
        token: SecretStr

    with pytest.raises(TypeError, match=r"cannot be secrets \(token\)"):
        Pipeline("login", params=Login)


def test_the_form_offers_yes_no_for_booleans_and_a_list_for_choices(tmp_path, browser, monkeypatch):
    _write(
        tmp_path,
        "choices.py",
        """
        from typing import Literal
        from tasks.pipelines import Params, Pipeline

        class Choices(Params):
            thumbnails: bool = True
            size: Literal[64, 256] = 256

        choices = Pipeline("choices", params=Choices)

        @choices.stage()
        def only(ctx, params):
            return {}
        """,
    )
    monkeypatch.setenv("TASKDECK_PIPELINES_PATH", str(tmp_path))
    browser.login("alice")
    form = browser.get("/tasks/new?type=choices").data.decode()
    assert '<option value="true" selected>Yes</option>' in form
    assert '<option value="256" selected>256</option>' in form
    made = browser.post(
        "/tasks/new", {"type": "choices", "params.thumbnails": "false", "params.size": "64"}
    )
    assert made.status_code == 302  # a default of "yes" can be turned off
    refused = browser.post("/tasks/new", {"type": "choices", "params.size": "65"})
    assert refused.status_code == 422


def test_a_pipeline_made_by_a_helper_beside_the_plugin_is_found_once(tmp_path):
    _write(
        tmp_path,
        "factory_helpers.py",
        """
        from tasks.pipelines import Pipeline

        def make(name):
            made = Pipeline(name)

            @made.stage()
            def only(ctx, params):
                return {}

            return made
        """,
    )
    _write(tmp_path, "made_here.py", "from factory_helpers import make\nmade = make('made')\n")
    _write(tmp_path, "imports_it.py", "from made_here import made as same_object\n")
    found = load([str(tmp_path)], None)  # met in two files, one object: no "two pipelines" error
    assert found["made"] is sys.modules["made_here"].made
    assert found["made"].source == str(tmp_path / "imports_it.py")  # where it was first met


def test_a_plugin_named_like_a_module_it_would_shadow_is_refused(tmp_path):
    _write(tmp_path, "json.py", "x = 1\n")
    with pytest.raises(LoadError, match=r"json.py is named like the module 'json'"):
        load([str(tmp_path)], None)
