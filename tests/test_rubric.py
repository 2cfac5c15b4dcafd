"""grader.rubric.load.load_rubric: the default rubric, and one test per validation error.

Every invalid rubric is the default one with a single edit (or a tiny hand-written one), so a
test fails for exactly the reason its name gives.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.errors import RubricError
from grader.rubric.load import load_rubric

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUBRIC = ROOT / "rubrics" / "ex06.toml"
REFERENCE = ROOT / "reference" / "ex06_reference.py"
RELATIVE_MODULE = 'module = "../reference/ex06_reference.py"'

HIDDEN_IDS = {"A1.stride_floor", "A2.padding_stride", "A3.padding_stride", "A4.explicit_stride",
              "B1.batch_sizes", "B1.eval_deterministic"}
ALL_IDS = [
    "A1.lecture_examples", "A1.random_inputs", "A1.stride_floor",
    "A2.slide_example", "A2.random_inputs", "A2.padding_stride",
    "A3.random_inputs", "A3.bias", "A3.padding_stride",
    "A4.default_stride", "A4.explicit_stride",
    "A5.feature_shapes",
    "B1.output_shape", "B1.stage_shapes", "B1.layer_order", "B1.logits", "B1.batch_sizes",
    "B1.eval_deterministic", "B2.parameter_count", "C1.train_loader", "C1.test_loader",
    "D1.weights", "D1.mean_loss", "D2.loss_accuracy", "D2.no_side_effects",
    "D3.brief_training", "E1.loads", "E1.accuracy",
]


def default_text() -> str:
    """The default rubric's text with its reference module made absolute (it moves to tmp_path)."""
    text = DEFAULT_RUBRIC.read_text("utf-8")
    assert text.count(RELATIVE_MODULE) == 1
    return text.replace(RELATIVE_MODULE, f'module = "{REFERENCE.as_posix()}"')


def edited_rubric(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """Write the default rubric with each `old` (which must occur) replaced once by `new`."""
    text = default_text()
    for old, new in edits:
        assert old in text, f"edit target not in the rubric: {old!r}"
        text = text.replace(old, new, 1)
    path = tmp_path / "edited.toml"
    path.write_text(text, "utf-8")
    return path


def rubric_error(path: Path) -> str:
    with pytest.raises(RubricError) as caught:
        load_rubric(path)
    return str(caught.value)


def assert_names(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, f"{part!r} missing from the message: {message}"


# ------------------------------------------------------------------------ the default rubric


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(DEFAULT_RUBRIC)


def test_default_rubric_declares_every_check_id_in_order(rubric):
    assert [check.id for check in rubric.checks] == ALL_IDS


def test_default_rubric_check_task_is_the_id_prefix(rubric):
    assert [check.task for check in rubric.checks] == [check_id.split(".")[0] for check_id in ALL_IDS]


def test_default_rubric_tasks_and_their_order(rubric):
    assert dict(rubric.tasks) == {
        "A1": "conv_output_size", "A2": "conv2d_single", "A3": "conv2d_multi", "A4": "maxpool2d",
        "A5": "feature_shapes", "B1": "CNN architecture", "B2": "CNN parameters",
        "C1": "Data loaders", "D1": "train()", "D2": "test()", "D3": "Trained model accuracy",
        "E1": "Saved model",
    }
    assert rubric.task_ids() == ["A1", "A2", "A3", "A4", "A5", "B1", "B2", "C1", "D1", "D2", "D3", "E1"]


def test_default_rubric_totals_100_points(rubric):
    assert rubric.max_score == 100


def test_default_rubric_task_maxima(rubric):
    maxima = {task: rubric.task_max(task) for task in rubric.task_ids()}
    assert maxima == {"A1": 5, "A2": 7, "A3": 7, "A4": 5, "A5": 6, "B1": 18, "B2": 7, "C1": 6,
                      "D1": 8, "D2": 8, "D3": 15, "E1": 8}


def test_default_rubric_hidden_checks(rubric):
    assert {check.id for check in rubric.checks if check.visibility == "hidden"} == HIDDEN_IDS


def test_default_rubric_public_only_drops_the_hidden_checks(rubric):
    public = rubric.public_only()
    assert {check.id for check in public.checks} == set(ALL_IDS) - HIDDEN_IDS
    assert public.max_score == 90


def test_default_rubric_kinds_for_parts_b_to_e(rubric):
    kinds = {check.task: check.kind for check in rubric.checks if check.task[0] in "BCDE"}
    assert kinds == {"B1": "architecture", "B2": "parameter_count", "C1": "data_loader",
                     "D1": "train_function", "D2": "test_function", "D3": "brief_training",
                     "E1": "saved_model"}


def test_default_rubric_a1_lecture_examples_options(rubric):
    check = rubric.check("A1.lecture_examples")
    assert check.kind == "function"
    assert check.points == 1
    assert check.options["function"] == "conv_output_size"
    assert check.options["oracle"] == "conv_output_size"
    assert [dict(case) for case in check.options["cases"]] == [
        {"h_in": 3, "kernel_size": 2},
        {"h_in": 28, "kernel_size": 3, "padding": 1},
        {"h_in": 28, "kernel_size": 2, "padding": 0, "stride": 2},
    ]
    assert check.options["random_cases"] is None
    # Defaults of fields the rubric leaves out.
    assert check.options["atol"] == 1e-4
    assert check.options["rtol"] == 1e-4
    assert check.options["partial_credit"] is False
    assert check.options["trace"] is True
    assert tuple(check.options["forbidden"]) == ()


def test_default_rubric_a1_random_inputs_options(rubric):
    check = rubric.check("A1.random_inputs")
    assert check.options["cases"] is None
    assert check.options["random_cases"] == 25
    assert dict(check.options["ranges"]) == {"h_in": [1, 64], "kernel_size": [1, 7], "padding": [0, 3],
                                             "stride": [1, 4]}


def test_default_rubric_a2_slide_example_options(rubric):
    check = rubric.check("A2.slide_example")
    assert check.points == 2
    assert [dict(case) for case in check.options["cases"]] == [
        {"image": [[0, 1, 2], [3, 4, 5], [6, 7, 8]], "kernel": [[0, 1], [2, 3]]}]
    assert check.options["expected"] == [[19, 25], [37, 43]]
    assert tuple(check.options["forbidden"])[:6] == (
        "conv1d", "conv2d", "conv3d", "conv_transpose2d", "torch.nn.functional.unfold", "im2col")
    # aten operators as the dispatch-level log names them (torch.convolution, torch.ops.aten.*)
    assert {"convolution", "_convolution"} <= set(check.options["forbidden"])


def test_default_rubric_a3_bias_range_forces_a_bias(rubric):
    assert rubric.check("A3.random_inputs").options["ranges"]["bias"] == [0, 0]
    assert rubric.check("A3.bias").options["ranges"]["bias"] == [1, 1]


def test_default_rubric_a4_default_stride_leaves_stride_out(rubric):
    check = rubric.check("A4.default_stride")
    assert check.options["oracle"] == "maxpool2d"
    assert check.options["ranges"]["stride"] == [0, 0]
    assert tuple(check.options["forbidden"]) == ("max_pool2d", "max_pool2d_with_indices", "adaptive_max_pool2d",
                                                 "mkldnn_max_pool2d")


def test_default_rubric_a5_feature_shapes_options(rubric):
    check = rubric.check("A5.feature_shapes")
    assert check.kind == "variable_shapes"
    assert check.points == 6
    assert check.options["variable"] == "feature_shapes"
    assert dict(check.options["stages"]) == {"block1": "block1", "block2": "block2", "flatten": "classifier.0"}
    assert check.options["partial_credit"] is True


def test_default_rubric_data_seed_execution_reference(rubric):
    assert rubric.data.source == "mnist"
    assert (rubric.seed.policy, rubric.seed.value) == ("per_submission", 6)
    assert rubric.execution.cell_timeout_s == 120
    assert rubric.execution.notebook_timeout_s == 600
    assert rubric.execution.probe_timeout_s == 30
    assert rubric.execution.kernel_start_timeout_s == 60
    assert rubric.execution.max_cell_output_bytes == 200_000
    assert rubric.execution.torch_threads is None
    assert rubric.reference.module == REFERENCE
    assert rubric.reference.model_class == "CNN"
    assert dict(rubric.reference.model_kwargs) == {"n_labels": 10}
    assert tuple(rubric.reference.input_shape) == (1, 28, 28)
    assert (rubric.model.model_class, rubric.model.n_classes) == ("CNN", 10)


def test_default_rubric_records_path_and_sha256(rubric):
    import hashlib

    assert rubric.path == DEFAULT_RUBRIC
    assert rubric.sha256 == hashlib.sha256(DEFAULT_RUBRIC.read_bytes()).hexdigest()


def test_minimal_rubric_resolves_reference_module_relative_to_the_rubric_file(tmp_path, monkeypatch):
    folder = tmp_path / "course" / "rubrics"
    folder.mkdir(parents=True)
    relative = Path(os.path.relpath(REFERENCE, folder)).as_posix()
    path = folder / "mini.toml"
    path.write_text(
        'schema = 1\n'
        '[data]\nsource = "digits28"\n'
        '[model]\nclass = "CNN"\ninput_shape = [1, 28, 28]\nn_classes = 10\n'
        f'[reference]\nmodule = "{relative}"\nclass = "CNN"\n'
        '[[checks]]\nid = "A1.only"\nkind = "function"\nfunction = "conv_output_size"\n'
        'oracle = "conv_output_size"\npoints = 2\ncases = [ { h_in = 3, kernel_size = 2 } ]\n', "utf-8")
    monkeypatch.chdir(tmp_path)  # the cwd must not matter, only the rubric's folder
    rubric = load_rubric(path)
    assert rubric.reference.module == REFERENCE
    assert rubric.title == "Untitled rubric"
    assert rubric.max_score == 2
    assert rubric.seed.policy == "per_submission"
    assert rubric.execution.cell_timeout_s == 120


# ------------------------------------------------------------------------ validation errors


def test_missing_file_names_the_path_and_the_option(tmp_path):
    path = tmp_path / "nowhere.toml"
    message = rubric_error(path)
    assert_names(message, str(path), "not found", "--rubric")


def test_invalid_toml_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('schema = 1\n[data\nsource = "digits28"\n', "utf-8")
    message = rubric_error(path)
    assert_names(message, str(path), "not valid TOML", "line 2")


def test_unknown_top_level_field(tmp_path):
    path = edited_rubric(tmp_path, ("schema = 1\n", 'schema = 1\nauthor = "me"\n'))
    message = rubric_error(path)
    assert_names(message, str(path), "top level", "'author'", "allowed fields here:", "checks", "schema")


def test_unknown_field_in_a_check_next_to_the_right_one(tmp_path):
    path = edited_rubric(tmp_path, ('points = 1\ntitle = "Output size for the lecture',
                                    'points = 1\npionts = 1\ntitle = "Output size for the lecture'))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[0] (A1.lecture_examples)", "'pionts'",
                 "allowed fields here:", "points")


def test_misspelled_field_in_a_check_is_named_in_the_error(tmp_path):
    # The typo replaces the field: the user wrote `pionts` where `points` belongs. The message
    # must point at what they wrote, not only at the `points` it could not find.
    path = edited_rubric(tmp_path, ('points = 1\ntitle = "Output size for the lecture',
                                    'pionts = 1\ntitle = "Output size for the lecture'))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[0] (A1.lecture_examples)", "'pionts'")


def test_wrong_type_of_points(tmp_path):
    path = edited_rubric(tmp_path, ("points = 1\n", 'points = "four"\n'))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[0] (A1.lecture_examples).points", "found 'four' (a string)",
                 "allowed: a number >= 0")


def test_negative_points(tmp_path):
    path = edited_rubric(tmp_path, ("points = 1\n", "points = -1\n"))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[0] (A1.lecture_examples).points", "found -1 (an integer)",
                 "allowed: a number >= 0")


def test_nan_points_are_rejected(tmp_path):
    # TOML has `nan`; a nan check makes the rubric's max_score (and every percent) nan.
    path = edited_rubric(tmp_path, ("points = 1\n", "points = nan\n"))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[0] (A1.lecture_examples).points", "nan", "a number >= 0")


def test_bad_check_id(tmp_path):
    path = edited_rubric(tmp_path, ('id = "A1.lecture_examples"', 'id = "A2-random"'))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[0].id", "'A2-random'", "'<task>.<aspect>'")


def test_duplicate_check_ids(tmp_path):
    path = edited_rubric(tmp_path, ('id = "A1.random_inputs"', 'id = "A1.lecture_examples"'))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[1].id", "'A1.lecture_examples'", "unique")


def test_unknown_check_kind(tmp_path):
    path = edited_rubric(tmp_path, ('kind = "function"', 'kind = "funtion"'))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[0] (A1.lecture_examples).kind", "found 'funtion' (a string)",
                 "one of function, variable_shapes")


def test_unknown_oracle(tmp_path):
    path = edited_rubric(tmp_path, ('oracle = "conv_output_size"', 'oracle = "conv_out"'))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[0] (A1.lecture_examples).oracle", "found 'conv_out' (a string)",
                 "one of conv_output_size, conv2d_single, conv2d_multi, maxpool2d")


def test_both_cases_and_random_cases(tmp_path):
    path = edited_rubric(tmp_path, ("random_cases = 25\n",
                                    "random_cases = 25\ncases = [ { h_in = 3, kernel_size = 2 } ]\n"))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[1] (A1.random_inputs).cases",
                 "found [{'h_in': 3, 'kernel_size': 2}]", "exactly one of `cases`", "`random_cases`")


def test_neither_cases_nor_random_cases(tmp_path):
    path = edited_rubric(tmp_path, ("random_cases = 25\n", ""))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[1] (A1.random_inputs).cases", "found None",
                 "exactly one of `cases`", "`random_cases`")


def test_ranges_missing_a_name(tmp_path):
    path = edited_rubric(tmp_path, ("padding = [0, 3], stride = [1, 4] }", "padding = [0, 3] }"))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[1] (A1.random_inputs).ranges",
                 "found {'h_in': [1, 64], 'kernel_size': [1, 7], 'padding': [0, 3]}",
                 "h_in, kernel_size, padding, stride")


def test_ranges_low_above_high(tmp_path):
    path = edited_rubric(tmp_path, ("ranges = { h_in = [1, 64]", "ranges = { h_in = [64, 1]"))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[1] (A1.random_inputs).ranges.h_in", "found [64, 1]",
                 "[low, high] with 1 <= low <= high")


def test_ranges_low_above_high_in_a_late_entry_shows_the_bad_pair(tmp_path):
    # The value found must be shown wherever the bad pair sits in the table, not cut off.
    path = edited_rubric(tmp_path, ("padding = [0, 3], stride = [1, 4] }", "padding = [0, 3], stride = [4, 1] }"))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[1] (A1.random_inputs).ranges.stride", "found [4, 1]",
                 "[low, high] with 1 <= low <= high")


def test_ranges_outside_the_parameter_domain_are_rejected(tmp_path):
    # conv_output_size's stride must be >= 1: the oracle turns a drawn 0 into 1 while the student
    # receives stride=0, so every such case would be marked wrong for a correct function.
    path = edited_rubric(tmp_path, ("padding = [0, 3], stride = [1, 4] }", "padding = [0, 3], stride = [0, 4] }"))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[1] (A1.random_inputs).ranges", "stride")


def test_case_missing_a_required_parameter(tmp_path):
    path = edited_rubric(tmp_path, ("{ h_in = 3, kernel_size = 2 }", "{ h_in = 3 }"))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[0] (A1.lecture_examples).cases", "{'h_in': 3}",
                 "required: h_in, kernel_size")


def test_case_with_a_value_of_the_wrong_type_is_rejected(tmp_path):
    # h_in = "3" loads today and only fails when the oracle runs, while scoring every submission.
    path = edited_rubric(tmp_path, ("{ h_in = 3, kernel_size = 2 }", '{ h_in = "3", kernel_size = 2 }'))
    message = rubric_error(path)
    assert_names(message, str(path), "checks[0] (A1.lecture_examples).cases", "'3'")


def test_unknown_data_source(tmp_path):
    path = edited_rubric(tmp_path, ('source = "mnist"', 'source = "emnist"'))
    message = rubric_error(path)
    assert_names(message, str(path), "data.source", "found 'emnist' (a string)", "one of mnist, digits28")


def test_bad_seed_policy(tmp_path):
    path = edited_rubric(tmp_path, ('policy = "per_submission"', 'policy = "random"'))
    message = rubric_error(path)
    assert_names(message, str(path), "seed.policy", "found 'random' (a string)",
                 "one of per_submission, fixed, fresh")


@pytest.mark.parametrize(("value", "shown"), [("0", "found 0 (an integer)"), ("-1.5", "found -1.5 (a number)")])
def test_non_positive_timeout(tmp_path, value, shown):
    path = edited_rubric(tmp_path, ("cell_timeout_s = 120", f"cell_timeout_s = {value}"))
    message = rubric_error(path)
    assert_names(message, str(path), "execution.cell_timeout_s", shown, "a number of seconds > 0")


def test_reference_module_that_does_not_exist(tmp_path):
    path = edited_rubric(tmp_path, (f'module = "{REFERENCE.as_posix()}"', 'module = "nope_reference.py"'))
    message = rubric_error(path)
    assert_names(message, str(path), "reference.module", str(tmp_path / "nope_reference.py"), "does not exist",
                 "relative to the rubric file")
