import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras_resnet as kr  # noqa: E402


def cifar_spec(**changes):
    """The 20-layer CIFAR net of the issue (3 stages of 3 basic blocks, 16/32/64)."""
    spec = kr.ModelSpec(
        input_shape=(32, 32, 3),
        stem=kr.StemSpec(filters=16, kernel_size=3, strides=1, pool=None),
        blocks=[
            kr.BlockSpec("basic", filters=16, repeat=3),
            kr.BlockSpec("basic", filters=32, repeat=3, strides=2),
            kr.BlockSpec("basic", filters=64, repeat=3, strides=2),
        ],
        shortcut="A",
        l2=1e-4,
        classes=10,
    )
    return spec.replace(**changes) if changes else spec


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture
def spec20():
    return cifar_spec()


@pytest.fixture(autouse=True)
def _fresh_keras():
    keras.backend.clear_session()
    yield


# ------------------------------------------------- which tests CI runs on one backend
# CI runs the fast suite twice: on TensorFlow (the README's command, everything) and on
# JAX with -m "not slow and not backend_independent". A test is marked here, not in its
# file, when running it again on JAX can show nothing the TensorFlow run did not:
#   * it builds no Keras layer and runs no backend op (spec/plan/registry checks, field
#     validation that fails before any layer, CLI argument errors, ast reads of the
#     source, README/docstring checks, file-system guarantees of model.save);
#   * or its subprocess pins its own backend (it runs the same on either suite);
#   * or it repeats on JAX what a kept test already shows there: the deep rows of the
#     preset table (parameter counts are shape arithmetic of the same layers; the JAX run
#     keeps one row per family: every block type, stem, shortcut option and the plain
#     twin still build on JAX) and the 224x224 keras.applications counts (the JAX run
#     keeps the numerical parity of resnet50 and resnet50v2), the from_keras_applications
#     example (the same ResNet50 port as that parity test, which also randomizes the BN
#     statistics) and `keras-resnet compare` (the CLI wrapper of kr.compare, whose runs
#     test_compare.py keeps on JAX).
#   * or it checks our orchestration on top of training that kept tests already run on
#     JAX: the trial ledger under SIGKILL, trials or models side by side giving the numbers
#     of one at a time, the run.json comparison, the backup file under a kill, the CLI's
#     progress lines, an export's accuracy check and card (their JAX training and export
#     paths stay in the JAX run through test_train, test_compare's main run, test_export's
#     reloads and the tuner's stock-tuner tests), and the fuzzing of valid specs (each
#     block type, shortcut and stem builds on JAX in test_builders/test_presets).
# Anything else that trains, predicts, saves/loads a model, exports, or seeds stays in both.
# Names are test functions (all their parameters) or, for the preset table, rows.
BACKEND_INDEPENDENT = {
    "test_layering.py": "*",
    # they start JAX processes whatever the suite's backend
    "test_multi_process.py": {"test_two_processes_train_one_model",
                              "test_a_process_alone_gives_up_in_bounded_time",
                              "test_a_coordinator_alone_ends_in_bounded_time_after_saying_what_it_waited_for",
                              "test_sigkill_of_one_process_then_the_job_resumes"},
    "test_docs.py": "*",
    "test_spec.py": "*",
    "test_fuzz.py": {"test_invalid_specs_name_the_field_before_any_layer",
                     "test_valid_specs_build_with_predicted_shape"},
    "test_shortcuts.py": {"test_rule", "test_the_decision_lives_in_the_plan",
                          "test_option_a_cannot_shrink"},
    "test_builders.py": {"test_jax_backend_builds_without_tensorflow"},
    "test_blocks.py": {"test_builtins_registered", "test_register_validation"},
    "test_data.py": {"test_digits_split_is_stratified_and_scaled",
                     "test_digits_flat_and_no_validation", "test_folder_errors",
                     "test_from_arrays_counts_classes_over_both_splits_and_checks_shapes",
                     "test_keras_datasets_offline_message"},
    "test_presets.py": {"test_table_covers_every_preset", "test_paper_cifar_parameter_counts",
                        "test_torchvision_and_reference_counts", "test_flops_match_reported",
                        "test_v2_layout_strides_on_last_block", "test_weights_errors",
                        "test_keras_applications_counts_at_224", "test_regression_table"},
    "test_plots.py": {"test_layout_marks_every_shortcut", "test_layout_other_options"},
    "test_reliability.py": {"test_bad_spec_files_exit_2",
                            "test_spec_directory_and_missing_file", "test_corrupt_keras_file",
                            "test_unwritable_target_exits_1_and_keeps_files",
                            "test_full_disk_midway_exits_1_and_keeps_previous",
                            "test_making_a_spec_does_not_move_the_random_state",
                            "test_export_killed_midway_leaves_previous_export"},
    "test_export.py": {"test_serving_imports_nothing_from_training",
                       "test_int8_tflite_of_a_run_folder_is_measured_and_carded",
                       "test_accuracy_drop_is_an_error_that_keeps_the_previous_export"},
    "test_examples.py": {"test_every_example_is_short_and_tested", "test_from_keras_applications"},
    "test_cli.py": {"test_version", "test_errors_are_one_line_with_exit_2",
                    "test_debug_shows_traceback", "test_console_script_entry_point",
                    "test_presets_command", "test_train_needs_one_source",
                    "test_compare_command", "test_removed_0_2_options_fail_naming_the_new_way"},
    "test_compare.py": {"test_arguments", "test_jobs_rule",
                        "test_results_repeat_bit_for_bit_whatever_jobs"},
    "test_train.py": {"test_schedule", "test_bad_arguments_fail_before_work",
                      "test_kill_during_backup_write_still_resumes_exactly",
                      "test_resume_with_other_settings_names_each_difference"},
    # parser and signature checks, the CLI's exit codes (a monkeypatched train), files
    "test_api.py": {"test_each_command_has_its_functions_parameters",
                    "test_help_shows_every_default", "test_recipe_defaults_are_the_commands_own",
                    "test_debug_and_config_anywhere",
                    "test_exit_2_for_input_errors_before_the_work",
                    "test_exit_130_for_ctrl_c", "test_public_signatures_use_one_name_per_concept",
                    "test_renamed_keywords_fail_naming_the_replacement",
                    "test_plot_refuses_to_overwrite_unless_asked"},
    # the pool's workers pin the numpy backend; locks, files and graphs build no layer
    "test_parallel.py": "*",
    "test_runfolder.py": "*",
    "test_portability.py": "*",
    # orchestration on top of training that kept tests run on JAX (resume, the ledger)
    "test_disk_full.py": "*",
    # TensorFlow decodes image files whatever the backend (tf.data)
    "test_imagecheck.py": "*",
    "test_readme.py": "*",
    "test_site.py": "*",
    "test_docs_pages.py": {"test_every_page_is_run_here_or_by_the_test_of_its_subject",
                           "test_every_no_run_mark_says_why_and_stands_before_a_block",
                           "test_tests_named_as_proof_exist"},
    "test_preprocessing.py": {"test_every_mode_on_a_known_pixel",
                              "test_the_default_and_files_without_the_field",
                              "test_spec_json_round_trip", "test_invalid_values_name_the_field",
                              "test_per_channel_conventions_need_rgb"},
    "test_tuning.py": {
        "test_every_hyperparameter_has_its_name_and_default_range",
        "test_spec_for_depth_scales_stages_in_proportion",
        "test_spec_for_depth_ignores_pool_entries_and_keeps_the_base",
        "test_spec_for_width_block_type_shortcut_l2", "test_hypermodel_rejects_bad_arguments",
        "test_hypermodel_rejects_a_space_with_invalid_networks",
        "test_tune_rejects_bad_arguments_before_any_work",
        "test_kerastuner_chief_variables_are_refused_with_the_new_way",
        "test_a_folder_that_is_not_a_tuner_project_is_never_resumed_or_deleted",
        "test_a_search_of_version_0_1_is_refused_with_a_clear_message",
        "test_only_public_kerastuner_and_tensorflow_api",
        "test_trials_side_by_side_give_the_scores_of_trials_one_at_a_time",
        "test_sigkill_then_resume_loses_nothing_and_reruns_nothing",
        "test_cli_tune_prints_progress_the_table_and_the_recipe",
        "test_recipe_for_applies_recipe_values_and_hyperbands_budget",
        "test_values_are_normalised_to_the_hyperparameters_type",
        "test_drop_path_rate_true_is_the_range_0_to_0_2_and_0_is_a_choice",
        "test_tf_data_for_worker_processes_is_refused_before_the_folder_is_touched",
        "test_the_0_2_spellings_of_tune_fail_naming_the_replacement",
        "test_cli_tune_old_folder_options_fail_naming_out"},
}
#: Rows of test_presets.py::test_regression_table that the JAX run keeps: one per family.
REGRESSION_ROWS_ON_JAX = {"cifar_plain20", "cifar_resnet20", "plain18", "plain50", "resnet18",
                          "resnet18d", "resnet50", "resnet50_v1_5", "resnet50d", "resnet50v2",
                          "wrn_16_8"}


def _backend_independent(item):
    rule = BACKEND_INDEPENDENT.get(item.path.name)
    name = getattr(item, "originalname", item.name)
    if rule != "*" and (not rule or name not in rule):
        return False
    if name == "test_regression_table":
        return item.callspec.params["name"] not in REGRESSION_ROWS_ON_JAX
    return True


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    marked = set()
    for item in items:
        if _backend_independent(item):
            item.add_marker(pytest.mark.backend_independent)
            marked.add((item.path.name, getattr(item, "originalname", item.name)))
    # A renamed test silently runs on both backends again: say so when the rule is in use.
    if "backend_independent" in (config.option.markexpr or ""):
        files = {item.path.name for item in items}
        stale = sorted(f"{module}::{name}" for module, names in BACKEND_INDEPENDENT.items()
                       if module in files and names != "*" for name in names
                       if (module, name) not in marked)
        if stale:
            config.issue_config_time_warning(pytest.PytestConfigWarning(
                f"tests/conftest.py BACKEND_INDEPENDENT names tests that do not exist: "
                f"{', '.join(stale)}"), stacklevel=2)
