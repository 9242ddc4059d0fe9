"""The ``lisearch`` command.

Every sub-command parses its arguments here and delegates to library functions; commands that run Spark
import :mod:`lisearch.spark` lazily so that ``lisearch --version`` or ``lisearch predict`` never start a JVM.
Expected failures (:class:`lisearch.errors.LisearchError`) print one paragraph and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lisearch.config import Settings, load_settings
from lisearch.errors import InputError, LisearchError
from lisearch.version import __version__


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.profile, args.set or [])


# --------------------------------------------------------------------------------------------------- doctor
def cmd_doctor(args: argparse.Namespace) -> int:
    """`lisearch doctor`: installation checks, then (unless --no-probe) a Delta write/read probe."""
    from lisearch.doctor import run_doctor

    return run_doctor(_settings(args), probe=not args.no_probe)


# ------------------------------------------------------------------------------------------------------ sql
#: Rows `lisearch sql` prints as a table when no --limit is given (CSV and JSON exports are complete by default).
TABLE_ROWS = 1000


def cmd_sql(args: argparse.Namespace) -> int:
    """`lisearch sql`: one Spark SQL query over the result tables, printed as a table, CSV or JSON lines. A running
    `lisearch serve` of this home answers it (Spark Connect, well under a second); otherwise an in-process Spark
    session does, after a one-line notice. Statements that write (--write) always run in process."""
    settings = _settings(args)
    from lisearch.serve import running_endpoint
    from lisearch.spark.sql import connect_session, run_sql

    limit = args.limit if args.limit is not None else (TABLE_ROWS if args.format == "table" else 0)
    if limit < 0:
        raise InputError(f"--limit {limit}: give a number of rows, or 0 for all.")
    endpoint = None if args.write else running_endpoint(settings)
    if endpoint is None and not args.write:
        sys.stderr.write("(no `lisearch serve` running for this home: starting Spark in this process, ~15 s)\n")
    spark = connect_session(settings, endpoint) if endpoint is not None else None
    # one more row than printed tells whether rows were cut
    frame = run_sql(settings, args.query, limit=limit + 1 if limit else 0, write=args.write, spark=spark)
    cut = bool(limit) and len(frame) > limit
    frame = frame.head(limit) if cut else frame
    if args.format == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        sys.stdout.write(frame.to_json(orient="records", lines=True, date_format="iso"))
    else:
        sys.stdout.write((_as_text(frame) if len(frame) else "(no rows)") + "\n")
    if cut:
        sys.stderr.write(f"(only the first {limit} rows; the query returns more: --limit 0 gives all)\n")
    return 0


def _print_frame(frame: Any, fmt: str) -> None:
    """A result on stdout as ``csv``, ``json`` (one record per line) or a plain-text ``table`` (:func:`_as_text`)."""
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", lines=True))
    else:
        print(_as_text(frame))


#: Characters of one text value a table shows (CSV and JSON keep every value whole; e.g. a CIF in `materials`).
CELL_CHARS = 60


def _as_text(frame: Any, width: int | None = None) -> str:
    """A result as a plain-text table: integers as integers, every missing value as NULL (pandas writes <NA>,
    NaN or None depending on the column's type); text values on one line and cut at :data:`CELL_CHARS` (with
    "..."); columns wrapped into blocks that fit ``width`` characters (default: the terminal's width when stdout
    is a terminal; piped output keeps one line per row)."""
    shown = frame.copy()
    for column in shown.columns:
        values = shown[column]
        if values.dtype == object:
            values = values.map(_one_line)
        if values.isna().any():
            values = values.astype(object).where(values.notna(), "NULL")
        shown[column] = values
    return str(shown.to_string(index=False, line_width=width or _terminal_width()))


def _one_line(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.replace("\r", "").replace("\n", "\\n")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 3] + "..."


def _terminal_width() -> int | None:
    import shutil

    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def cmd_spark_sql(args: argparse.Namespace) -> int:
    """`lisearch spark-sql`: beeline on a running `lisearch serve` of this home, else Spark's own spark-sql shell
    with Delta and every result table registered (after a one-line notice). Arguments after -- go to either
    (-e "SELECT ...", -f script.sql)."""
    import os
    import subprocess

    settings = _settings(args)
    from lisearch.serve import running_endpoint
    from lisearch.spark.shell import beeline_command, spark_sql_command

    extra = list(args.spark_sql_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    endpoint = running_endpoint(settings)
    if endpoint is not None:
        cmd = beeline_command(settings, endpoint, extra)
    else:
        if not args.print:
            sys.stderr.write("(no `lisearch serve` running for this home: starting the spark-sql shell, ~15 s)\n")
        cmd = spark_sql_command(settings, extra)
    if args.print:
        print(" ".join(cmd))
        return 0
    env = dict(os.environ)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    return subprocess.call(cmd, env=env)


# ---------------------------------------------------------------------------------------------------- serve
def cmd_serve(args: argparse.Namespace) -> int:
    """`lisearch serve`: start (or --status, --stop) the SQL endpoint of this home: Thrift JDBC/ODBC and Spark
    Connect over every warehouse table, read-only unless serve.allow_writes."""
    settings = _settings(args)
    from lisearch.serve import describe, start, status, stop

    if args.stop:
        stopped = stop(settings)
        print(f"lisearch serve stopped (pid {stopped.pid})." if stopped else "lisearch serve: not running.")
        return 0
    if args.status:
        state, endpoint = status(settings)
        print(describe(state, endpoint))
        return 0 if state == "running" else 3
    endpoint = start(settings, args.profile, list(args.set or []), say=lambda text: print(text, file=sys.stderr))
    print(describe("running", endpoint))
    print("Query it: lisearch sql '...', lisearch spark-sql (beeline), or any JDBC/ODBC or Spark Connect client;")
    print("stop it: lisearch serve --stop")
    return 0


# ----------------------------------------------------------------------------------------------------- jars
def cmd_fetch_jars(args: argparse.Namespace) -> int:
    """`lisearch fetch-jars`: copy the Delta jars from Maven Central into the installation, once."""
    from lisearch.jars import fetch_jars, serve_jar

    jars_dir = _settings(args).paths.jars_dir
    for path in fetch_jars(jars_dir):
        print(path)
    print(serve_jar(jars_dir))
    return 0


def cmd_jars(args: argparse.Namespace) -> int:
    """`lisearch jars`: print the local Delta jar paths, e.g. for spark-submit --jars."""
    from lisearch.jars import find_jars

    print(args.sep.join(str(p) for p in find_jars(_settings(args).paths.jars_dir)))
    return 0


# ------------------------------------------------------------------------------------------------ structures
def cmd_label_structures(args: argparse.Namespace) -> int:
    """`lisearch label-structures`: sML labels of a CIF source into the table `structures`."""
    overrides = list(args.set or [])
    if args.source:
        overrides.append(f"label.source={args.source}")
    if args.force:
        overrides.append("label.force=true")
    if args.limit:
        overrides.append(f"label.limit={args.limit}")
    settings = load_settings(args.profile, overrides)
    from lisearch.spark.label import run_label_job

    summary = run_label_job(settings)
    if args.summary_json:
        with open(args.summary_json, "w") as fh:
            json.dump(summary, fh, indent=2)
    return 0


def cmd_compare_sendek(args: argparse.Namespace) -> int:
    """`lisearch compare-sendek`: the featurizer against Sendek's 2017 values for 400 MP ids."""
    from lisearch.structure.reference import compare_with_reference, format_comparison

    report = compare_with_reference(partial_occupancy=_settings(args).label.partial_occupancy)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_comparison(report))
    return 0


def cmd_sml_exp40(args: argparse.Namespace) -> int:
    """`lisearch sml-exp40`: sML on the 40 experimental materials (published model and LOOCV refit)."""
    from lisearch.structure.exp40 import evaluate_sml

    report = evaluate_sml(partial_occupancy=_settings(args).label.partial_occupancy, C=args.C)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"exp40: {report['with_features']} of {report['rows']} materials have a structure with features")
    print(f"  no structure: {', '.join(report['without_structure'])}")
    print(f"  published sML accuracy: {100 * report['published_accuracy']:.1f} %")
    print(f"    misclassified: {', '.join(report['published_misclassified'])}")
    print(
        f"  refit leave-one-out accuracy (C={report['refit_C']:g}): {100 * report['refit_loocv_accuracy']:.1f} % "
        f"(paper: {100 * report['paper_loocv_accuracy']:.0f} % on 40)"
    )
    return 0


# --------------------------------------------------------------------------------------------------- models
def cmd_train(args: argparse.Namespace) -> int:
    """`lisearch train`: eML and esML (as the [train] settings say) into the artifacts folder."""
    settings = _settings(args)
    from lisearch.models.training import train_all
    from lisearch.report import table_one_saved
    from lisearch.spark.models import read_structures

    structures = read_structures(settings)
    artifacts = settings.paths.artifacts_dir
    summary = train_all(structures, artifacts, seed=args.seed, esml=settings.train)
    # Table I's metrics of the new models, saved beside them: `lisearch report` then reads them (seconds)
    table_one_saved(lambda: structures, artifacts, settings.paths.warehouse_dir, settings.label.partial_occupancy)
    eml, esml = summary["eml"], summary["esml"]
    print(f"eML  (exp40): best of {eml['subsets_tried']} descriptor subsets: {', '.join(eml['descriptors'])}")
    print(f"      LOOCV accuracy {100 * eml['best_loocv_accuracy']:.1f} % (paper: 97.5 % with 7 descriptors)")
    print(
        f"esML ({esml['name']}.json, class weight {esml['class_weight']}; MP set, {esml['n']} sML labels, "
        f"{100 * esml['positive_share']:.1f} % positive): "
        f"10-fold CV {100 * esml['cv_accuracy']:.1f} % (balanced {100 * esml['cv_balanced_accuracy']:.1f} %), "
        f"hold-out {100 * esml['holdout_accuracy']:.1f} % (balanced {100 * esml['holdout_balanced_accuracy']:.1f} %)"
    )
    print(f"artifacts in {summary['artifacts']}")
    return 0


def _atom2vec_config(args: argparse.Namespace, **defaults: Any) -> Any:
    from lisearch.models.atom2vec_train import Atom2VecConfig

    values = {**defaults}
    for key in ("dim", "steps", "learning_rate", "class_weight", "seed"):
        if getattr(args, key, None) is not None:
            values[key] = getattr(args, key)
    if values.get("dim", 1) < 1 or values.get("steps", 1) < 1:
        raise InputError("--dim and --steps must be at least 1.")
    return Atom2VecConfig(**values)


def _add_atom2vec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, help="Adam steps (early stopping keeps the best validation loss)")
    p.add_argument("--learning-rate", dest="learning_rate", type=float)
    p.add_argument("--class-weight", dest="class_weight", help="none | balanced | 1:w (as esML's train.class_weight)")
    p.add_argument("--seed", type=int, help="split and first initialisation seed (default 0)")


def cmd_train_atom2vec(args: argparse.Namespace) -> int:
    """`lisearch train-atom2vec`: atom2vec-esML (JAX) into artifacts/atom2vec.json."""
    settings = _settings(args)
    cfg = _atom2vec_config(args)  # bad options stop before Spark
    from lisearch.models.atom2vec_train import train_atom2vec
    from lisearch.spark.models import read_structures

    meta = train_atom2vec(read_structures(settings), settings.paths.artifacts_dir, cfg, seeds=args.seeds)
    print(
        f"atom2vec-esML (D_atom = {cfg.dim}, best of {args.seeds} initialisations, {meta['seconds']} s): MP hold-out "
        f"{100 * meta['holdout_accuracy']:.1f} % (balanced {100 * meta['holdout_balanced_accuracy']:.1f} %); "
        f"numpy vs JAX max |diff| {meta['numpy_vs_jax_max_abs_diff']:.1e}"
    )
    print(f"artifact: {settings.paths.artifacts_dir / 'atom2vec.json'}")
    return 0


def cmd_atom2vec_sweep(args: argparse.Namespace) -> int:
    """`lisearch atom2vec-sweep`: hold-out accuracy per D_atom (CSV and figure)."""
    settings = _settings(args)
    try:
        dims = tuple(int(d) for d in args.dims.split(","))
    except ValueError:
        raise InputError(f"--dims {args.dims!r}: give comma-separated integers, e.g. 1,2,3,4,5,6,7,8.") from None
    if not dims or min(dims) < 1:
        raise InputError("--dims: every embedding size must be at least 1.")
    cfg = _atom2vec_config(args)
    from lisearch.models.atom2vec_train import dim_sweep
    from lisearch.report import plot_dim_sweep
    from lisearch.spark.models import read_structures

    sweep = dim_sweep(read_structures(settings), dims, args.seeds, cfg)
    folder = Path(args.output) if args.output else settings.paths.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    sweep.to_csv(folder / "atom2vec_dim_sweep.csv", index=False)
    plot_dim_sweep(sweep, folder / "atom2vec_dim_sweep.png")
    print(sweep.groupby("dim")[["holdout_accuracy", "holdout_balanced_accuracy"]].mean().round(4).to_string())
    print(f"written: {folder / 'atom2vec_dim_sweep.csv'}, {folder / 'atom2vec_dim_sweep.png'}")
    return 0


def cmd_atom2vec_contributions(args: argparse.Namespace) -> int:
    """`lisearch atom2vec-contributions`: each element's push toward fast conduction."""
    settings = _settings(args)
    if args.initialisations < 1:
        raise InputError("--initialisations must be at least 1.")
    cfg = _atom2vec_config(args, steps=500, learning_rate=0.03)
    from lisearch.models.atom2vec_train import element_contributions
    from lisearch.report import plot_contributions
    from lisearch.spark.models import read_structures

    runs, summary = element_contributions(read_structures(settings), args.initialisations, cfg)
    folder = Path(args.output) if args.output else settings.paths.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    summary.to_csv(folder / "atom2vec_contributions.csv", index=False)
    runs.to_csv(folder / "atom2vec_contributions_runs.csv", index=False)
    plot_contributions(summary, folder / "atom2vec_contributions.png")
    print(summary.round(3).to_string(index=False, max_rows=30))
    print(f"written: {folder / 'atom2vec_contributions.csv'}, {folder / 'atom2vec_contributions.png'}")
    return 0


def cmd_train_measured(args: argparse.Namespace) -> int:
    """`lisearch train-measured`: the measured-conductivity models on OBELiX into the artifacts."""
    settings = _settings(args)
    from lisearch.measured.models import MODEL_FILES, model_params
    from lisearch.measured.training import train_measured

    meta = train_measured(settings.paths.artifacts_dir, model_params(settings), settings.measured.group_min_fraction)
    print(
        f"measured models (extra trees on composition + esML/atom2vec transfer features) fitted on {meta['n']} OBELiX "
        f"materials ({meta['positives']} with sigma >= {settings.measured.threshold:g} S/cm, "
        f"{meta['censored_rows']} upper bounds at their bound)"
    )
    print("artifacts: " + ", ".join(str(settings.paths.artifacts_dir / f) for f in MODEL_FILES.values()))
    print("validate them with `lisearch validate` (refits on the official split and on leave-system-out folds)")
    return 0


def _section_settings(args: argparse.Namespace, section: str, options: tuple[str, ...]) -> Settings:
    """Settings with the command's options written as ``section.option=value`` overrides (after any --set); the
    ``run_id`` option sets ``run.id``, the one run id of every job."""
    overrides = list(args.set or [])
    for option in options:
        value = getattr(args, option, None)
        if value is not None:
            overrides.append(f"run.id={value}" if option == "run_id" else f"{section}.{option}={value}")
    return load_settings(args.profile, overrides)


def cmd_shortlist(args: argparse.Namespace) -> int:
    """`lisearch shortlist`: plausible candidates of a run, best per family, as a table and reports."""
    settings = _section_settings(args, "shortlist", ("run_id", "top_per_family", "max_rows", "show"))
    from lisearch.spark.shortlist import format_shortlist, run_shortlist

    print(format_shortlist(run_shortlist(settings)))
    return 0


def cmd_score_measured(args: argparse.Namespace) -> int:
    """`lisearch score-measured`: a run's candidates scored by the measured models (Spark)."""
    settings = _section_settings(args, "measured", ("run_id",))
    from lisearch.spark.measured import format_measured, run_score_measured

    print(format_measured(run_score_measured(settings)))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """`lisearch validate`: every model on OBELiX (official split and leave-system-out CV)."""
    settings = _settings(args)
    from lisearch.measured.validation import (
        calibration_study_markdown,
        run_calibration_study,
        run_validation,
        to_markdown,
    )

    if args.calibration_study:
        study, path = run_calibration_study(settings, Path(args.output) if args.output else None)
        print(calibration_study_markdown(study))
        print(f"written: {path}")
        return 0
    report, paths = run_validation(settings, Path(args.output) if args.output else None, with_sml=not args.no_sml)
    print(to_markdown(report))
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """`lisearch report`: Table I beside the paper (and the measured table when those models exist), from the metrics
    saved beside the artifacts when they match the models and the data (seconds); --retrain recomputes all."""
    settings = _settings(args)
    from lisearch.models.loading import MODEL_FILES
    from lisearch.models.training import train_all
    from lisearch.report import table_one_saved, to_markdown, write_report
    from lisearch.spark.models import read_structures

    artifacts = settings.paths.artifacts_dir
    if args.retrain or not all((artifacts / f).is_file() for f in MODEL_FILES.values()):
        train_all(read_structures(settings), artifacts)
    report, reused = table_one_saved(
        lambda: read_structures(settings), artifacts, settings.paths.warehouse_dir,
        settings.label.partial_occupancy, reuse=not args.retrain,
    )  # fmt: skip
    folder = Path(args.output) if args.output else settings.paths.home / "reports"
    paths = write_report(report, folder)
    print(to_markdown(report))
    print("written: " + ", ".join(str(p) for p in paths.values()))
    from lisearch.measured.models import MODEL_FILES as MEASURED_FILES

    measured_reused = False
    if not args.no_measured and all((artifacts / f).is_file() for f in MEASURED_FILES.values()):
        from lisearch.measured.validation import run_validation, saved_validation, write_validation
        from lisearch.measured.validation import to_markdown as measured_markdown

        saved = None if args.retrain else saved_validation(settings)  # read once: taken as it is when there
        measured_reused = saved is not None
        if saved is not None:
            measured, measured_paths = saved, write_validation(saved, folder)
        else:
            measured, measured_paths = run_validation(settings, folder)
        print("\n" + measured_markdown(measured))
        print("written: " + ", ".join(str(p) for p in measured_paths.values()))
    if reused or measured_reused:
        sys.stderr.write(
            f"(from the metrics saved in {artifacts / 'metrics'} for these models and data; --retrain recomputes)\n"
        )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """`lisearch predict`: every trained model's scores for formulas (no Spark)."""
    settings = _settings(args)
    from lisearch.prediction import predict_with_artifacts, read_formula_csv

    formulas = list(args.formulas)
    output = Path(args.output) if args.output else None
    if output is not None and not output.parent.is_dir():
        raise InputError(f"--output {output}: the folder {output.parent} does not exist. Create it or write elsewhere.")
    if output is not None and output.is_dir():
        raise InputError(f"--output {output} is a folder. Give a file name, e.g. {output / 'predictions.csv'}.")
    if args.csv:
        formulas += read_formula_csv(Path(args.csv))
    names = None if args.models is None else [n.strip() for n in args.models.split(",") if n.strip()]
    frame = predict_with_artifacts(formulas, settings.paths.artifacts_dir, names)
    if output is not None:
        try:
            frame.to_csv(output, index=False)
        except OSError as exc:
            raise InputError(f"--output {output} cannot be written ({exc.strerror or exc}).") from None
        print(f"{len(frame)} rows ({frame['error'].notna().sum()} with errors) written to {output}")
    else:
        _print_frame(frame, args.format)
    failed = int(frame["error"].notna().sum())
    if failed == len(frame):
        sys.stderr.write(
            f"lisearch predict: none of the {len(frame)} formula(s) could be scored; the error column says why.\n"
        )
        return 2
    return 0


MATERIALS_OPTIONS = ("candidates", "fmax", "steps", "device")
POTENTIAL_NAME = "CHGNet 0.3.0"
#: Columns `lisearch materials` prints (the CIF text and the long decomposition stay in the table).
MATERIALS_SHOWN = ["shortlist_rank", "formula", "candidate", "template_formula", "substitution_probability", "status",
                   "steps", "energy_per_atom", "space_group", "e_above_hull"]  # fmt: skip


def cmd_materials(args: argparse.Namespace) -> int:
    """`lisearch materials`: the top of a run's shortlist (or given formulas) to structures and hulls (Spark)."""
    settings = _section_settings(args, "materials", ("run_id", "top", *MATERIALS_OPTIONS))
    from lisearch.prediction import read_formula_csv
    from lisearch.spark.materials import materials_frame, run_materials
    from lisearch.spark.session import get_session

    formulas = list(args.formulas or []) + (read_formula_csv(Path(args.csv)) if args.csv else [])
    if formulas and not settings.run.id:
        raise InputError("Formulas given directly need --run-id NAME: the `materials` rows are stored under it.")
    summary = run_materials(settings, settings.materials.top, formulas or None, restart=args.restart)
    frame = materials_frame(get_session(settings), settings, summary["run_id"])
    print(_as_text(frame[MATERIALS_SHOWN].head(args.show)))
    print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


def cmd_mobility(args: argparse.Namespace) -> int:
    """`lisearch mobility`: MD of a run's best materials (Spark) and the combined ranking of its materials."""
    settings = _section_settings(args, "mobility", ("run_id", "top", "temperatures", "md_ps"))
    from lisearch.spark.mobility import RANKING, mobility_frame, run_mobility
    from lisearch.spark.session import get_session

    summary = run_mobility(settings, settings.mobility.top, restart=args.restart)
    ranking = mobility_frame(get_session(settings), settings, summary["run_id"], RANKING)
    print(_as_text(ranking.drop(columns=["run_id"]).head(args.show)))
    print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


def cmd_validate_materials(args: argparse.Namespace) -> int:
    """`lisearch validate-materials`: the hull pipeline on known compounds, structure prediction leave one out."""
    settings = _section_settings(args, "materials", MATERIALS_OPTIONS)
    from lisearch.materials.validation import run_materials_validation

    if args.known < 0 or args.loo < 0 or args.processes < 1:
        raise InputError("--known and --loo must be >= 0 (0 skips that check) and --processes >= 1.")
    if not (args.known or args.loo or args.table_iii):
        raise InputError("Nothing to check: give --known N, --loo N or --table-iii.")

    def say(text: str) -> None:
        sys.stderr.write(text + "\n")

    output = Path(args.output) if args.output else None
    report = run_materials_validation(settings, args.known, args.loo, args.processes, output, say, args.table_iii)
    print(json.dumps(report, indent=1))
    return 0


def cmd_structure_mobility(args: argparse.Namespace) -> int:
    """`lisearch structure-mobility`: sML and BVSE barriers of CIF files, folders or archives (no Spark)."""
    settings = _section_settings(args, "mobility", ("bvse_resolution",))
    import pandas as pd

    from lisearch.datasets import iter_cifs
    from lisearch.materials.validation import resumable_map
    from lisearch.mobility.validation import describe_item

    work: list[tuple[str, str, Any]] = []
    for source in map(Path, args.paths):
        if not source.exists():
            raise InputError(f"{source} does not exist. Give CIF files, folders of them or .tar(.gz|.xz) archives.")
        items = [(source.stem, source.read_text(errors="replace"))] if source.suffix.lower() == ".cif" else []
        work += [(key, text, settings.mobility) for key, text in (items or iter_cifs(source))]
    if not work:
        raise InputError(f"No .cif file in {', '.join(args.paths)}.")
    if args.processes > 1:
        frame = resumable_map(args.processes, describe_item, work, None)
    else:
        frame = pd.DataFrame([describe_item(item) for item in work])
    _print_frame(frame, args.format)
    return 0 if frame["mobility_reason"].isna().any() else 2


def cmd_validate_mobility(args: argparse.Namespace) -> int:
    """`lisearch validate-mobility`: sML and BVSE on OBELiX's structures, known fast against poor conductors."""
    settings = _section_settings(args, "mobility", ("bvse_resolution", "md_ps"))
    from lisearch.mobility.validation import run_mobility_validation

    if args.processes < 1:
        raise InputError(f"--processes {args.processes}: give at least 1.")
    output = Path(args.output) if args.output else None

    def say(text: str) -> None:
        sys.stderr.write(text + "\n")

    if args.obelix_md < 0:
        raise InputError(f"--obelix-md {args.obelix_md}: give a number of structures >= 0 (0: none).")
    report = run_mobility_validation(settings, args.processes, args.md, output, say=say, obelix=not args.no_obelix,
                                     obelix_md=args.obelix_md)  # fmt: skip
    print(json.dumps({k: v for k, v in report.items() if k != "known"}, indent=1))
    return 0


def cmd_predict_structure(args: argparse.Namespace) -> int:
    """`lisearch predict-structure`: candidate structures, relaxation and energy above the hull (no Spark)."""
    settings = _section_settings(args, "materials", MATERIALS_OPTIONS)
    from lisearch.materials.pipeline import predict_materials
    from lisearch.prediction import read_formula_csv

    formulas = list(args.formulas) + (read_formula_csv(Path(args.csv)) if args.csv else [])
    if not formulas:
        raise InputError("Give formulas (e.g. `lisearch predict-structure Li3AsO4`) or --csv FILE.")
    cif_dir = Path(args.cif_dir) if args.cif_dir else None
    if cif_dir is not None and cif_dir.exists() and not cif_dir.is_dir():
        raise InputError(f"--cif-dir {cif_dir} is a file. Give a folder (it is created when missing).")

    def progress(text: str) -> None:
        if not args.quiet:
            sys.stderr.write(text + "\n")

    frame = predict_materials(
        formulas, settings.paths.warehouse_dir, settings.materials, progress=progress, mobility=settings.mobility
    )
    if cif_dir is not None:
        cif_dir.mkdir(parents=True, exist_ok=True)
        for row in frame.dropna(subset=["cif"]).itertuples(index=False):
            (cif_dir / f"{row.formula}_{row.candidate}_{row.template_id}.cif").write_text(str(row.cif))
    _print_frame(frame.drop(columns="cif") if (args.format == "table" or cif_dir is not None) else frame, args.format)
    if cif_dir is not None:
        sys.stderr.write(f"relaxed structures written to {cif_dir}\n")
    return 0 if frame["energy_per_atom"].notna().any() else 2


# --------------------------------------------------------------------------------------------------- screen
def _screen_overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.set or [])
    for option in ("elements", "exclude", "step", "sizes", "model", "oxidation_list"):
        value = getattr(args, option, None)
        if value is not None:
            overrides.append(f"screen.{option}={value}")
    if args.run_id is not None:
        overrides.append(f"run.id={args.run_id}")
    if args.max_cost is not None:
        overrides.append(f"screen.max_cost_per_kg={args.max_cost}")
    if args.max_mass is not None:
        overrides.append(f"screen.max_mean_atomic_mass={args.max_mass}")
    if getattr(args, "resume", False):
        overrides.append("screen.resume=true")
    return overrides


def cmd_screen(args: argparse.Namespace) -> int:
    """`lisearch screen`: the composition screen into `candidates`, `funnel`, `funnel_by_set`, `runs`."""
    settings = load_settings(args.profile, _screen_overrides(args))
    from lisearch.screening.plan import plan_from_settings

    plan = plan_from_settings(settings)  # the one plan: every bad input stops here, before Spark is imported
    from lisearch.spark.screen import run_screen

    summary = run_screen(settings, plan=plan)  # logs the funnel
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_narrow(args: argparse.Namespace) -> int:
    """`lisearch narrow`: a run narrowed to `stable_oxides`, with the Table III trace."""
    settings = _section_settings(args, "narrow", ("run_id", "anion", "max_z", "top"))
    from lisearch.spark.narrow import format_narrow, run_narrow

    print(format_narrow(run_narrow(settings)))
    return 0


def cmd_paper_study(args: argparse.Namespace) -> int:
    """Sweep the paper's open choices on a fixed sample; report the `paper` profile's choice and the Table III trace."""
    from lisearch.api import paper_study
    from lisearch.downstream.study import profile_mismatches, profile_settings, to_markdown

    result = paper_study(args.sample, args.seed, args.output, _settings(args))
    print(to_markdown(result))
    mismatches = profile_mismatches(result.paper, load_settings("paper"))
    verdict = "holds this choice" if not mismatches else "differs: " + "; ".join(mismatches)
    print(f"\nconf/paper.toml {verdict}.\nThe choice as overrides: {' '.join(profile_settings(result.paper))}")
    print("written: " + ", ".join(str(p) for p in result.paths.values()))
    return 0


# ------------------------------------------------------------------------------------------------- pipeline
def _run_materials_step(settings: Settings) -> None:
    """`lisearch run`'s last step: the top of the shortlist to materials, printed, then where the tables are."""
    from lisearch.spark.materials import materials_frame, run_materials
    from lisearch.spark.session import get_session

    materials = run_materials(settings, settings.materials.top)
    frame = materials_frame(get_session(settings), settings, materials["run_id"])
    print(
        f"\n7. Materials: the top {settings.materials.top} of the shortlist as relaxed structures ({POTENTIAL_NAME}), "
        "with their energy above the convex hull of the Materials Project phases (same potential)\n"
    )
    print(_as_text(frame[MATERIALS_SHOWN]))
    print("   " + " ".join(f"{k}={v}" for k, v in materials.items()))
    print(f"\nTables in {settings.paths.warehouse_dir}; query them with .venv/bin/lisearch sql 'SELECT ...'")


def cmd_run(args: argparse.Namespace) -> int:
    """The whole pipeline as far as it is built, on the profile's settings; finished stages are reused."""
    overrides = list(args.set or [])
    if not load_settings(args.profile, overrides).run.id:
        overrides.append("run.id=default")  # the paper profile names its own run ("paper")
    settings = load_settings(args.profile, overrides)
    from lisearch.models.loading import ATOM2VEC_FILE, MODEL_FILES
    from lisearch.models.training import train_all
    from lisearch.report import table_one_saved, to_markdown, write_report
    from lisearch.screening.plan import plan_from_settings
    from lisearch.spark.label import format_summary, run_label_job
    from lisearch.spark.models import read_structures
    from lisearch.spark.narrow import format_narrow, run_narrow
    from lisearch.spark.screen import format_funnel, run_screen

    label = run_label_job(settings)  # 1. sML labels (incremental: reuses the table)
    artifacts = settings.paths.artifacts_dir
    structures = read_structures(settings)
    if not all((artifacts / f).is_file() for f in MODEL_FILES.values()):
        train_all(structures, artifacts)  # 2. eML and esML (reused when present; `lisearch train` retrains)
    if not (artifacts / f"{settings.train.esml_name}.json").is_file():
        train_all(structures, artifacts, esml=settings.train)  # the profile's esML variant (e.g. the paper profile)
    if not (artifacts / ATOM2VEC_FILE).is_file():
        from lisearch.models.atom2vec_train import train_atom2vec

        train_atom2vec(structures, artifacts)  # atom2vec-esML (JAX, about 30 s)
    from lisearch.measured.models import MODEL_FILES as MEASURED_FILES
    from lisearch.measured.models import model_params
    from lisearch.measured.training import train_measured

    if not all((artifacts / f).is_file() for f in MEASURED_FILES.values()):
        train_measured(artifacts, model_params(settings), settings.measured.group_min_fraction)  # measured (OBELiX)
    report, _ = table_one_saved(lambda: structures, artifacts, settings.paths.warehouse_dir,
                                settings.label.partial_occupancy)  # fmt: skip
    paths = write_report(report, settings.paths.home / "reports")
    screen = run_screen(settings, plan=plan_from_settings(settings))  # 3. the screen; run "default" is replaced
    narrow = run_narrow(settings)
    print("\n== lisearch run: summary ==\n")
    print("1. sML labels of the structure set")
    print(format_summary(label))
    print("\n2. Table I (accuracy %, balanced accuracy in brackets)\n")
    print(to_markdown(report))
    print(f"   written to {paths['markdown']} and {paths['figure']}")
    print("\n3. The composition screen")
    print(format_funnel(screen))
    print("\n4. Stable oxides (first four rows, oxides, stability proxies)")
    print(format_narrow(narrow))
    from lisearch.measured.validation import run_validation
    from lisearch.measured.validation import to_markdown as measured_markdown
    from lisearch.spark.shortlist import format_shortlist, run_shortlist

    shortlist = run_shortlist(settings)
    measured, measured_paths = run_validation(settings, None, reuse=True)  # 6. every model on measured data
    print("\n5. The shortlist: plausible candidates, best per chemical family")
    print(format_shortlist(shortlist))
    print("\n6. Measured conductivities (OBELiX): every model, official split and leave-system-out CV\n")
    print(measured_markdown(measured))
    print(f"   written to {measured_paths['markdown']} and {measured_paths['figure']}")
    _run_materials_step(settings)  # 7. structures and hulls of the shortlist's top
    return 0


# -------------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The `lisearch` argument parser: one sub-command per function above, each with --profile and --set."""
    parser = argparse.ArgumentParser(
        prog="lisearch",
        description="Screen compositions for solid-state Li-ion conductors on Spark and Delta Lake.",
    )
    parser.add_argument("--version", action="version", version=f"lisearch {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", help="profile in conf/ (local, standalone, cluster) or a .toml path")
    common.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override one setting (repeatable)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = add("doctor", cmd_doctor, "check Python, Java, Spark, Delta, jars, folders; run a Delta write/read probe")
    p.add_argument("--no-probe", action="store_true", help="skip the Delta write/read probe (no Spark start)")

    p = add("sql", cmd_sql, "run Spark SQL against the lisearch tables and print the result (read-only)")
    p.add_argument("query")
    p.add_argument(
        "--write", action="store_true",
        help="allow statements that change tables (maintenance; the commits say `lisearch sql --write`)",
    )  # fmt: skip
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument(
        "--limit",
        type=int,
        help=f"rows at most (0 = all; default {TABLE_ROWS} for --format table, all for csv and json)",
    )

    p = add("spark-sql", cmd_spark_sql, "a SQL shell: beeline on `lisearch serve`, else Spark's spark-sql with Delta")
    p.add_argument("--print", action="store_true", help="print the shell's command instead of running it")
    p.add_argument(
        "spark_sql_args", nargs=argparse.REMAINDER, help="after --: arguments for beeline / spark-sql (-e, -f, ...)"
    )

    p = add("serve", cmd_serve, "start a SQL endpoint (Thrift JDBC/ODBC and Spark Connect) over the result tables")
    p.add_argument("--status", action="store_true", help="say whether it runs, where and how (exit 3 when not)")
    p.add_argument("--stop", action="store_true", help="stop the running endpoint")

    add("fetch-jars", cmd_fetch_jars, "fetch the Delta Lake jars from Maven Central once (make setup does this)")
    p = add("jars", cmd_jars, "print the local Delta jar paths (for spark-submit --jars)")
    p.add_argument("--sep", default=",")

    p = add("label-structures", cmd_label_structures, "label crystal structures with sML into the table `structures`")
    p.add_argument("--source", help="'bundled' (default), a folder of CIF files or a .tar/.tar.gz/.tar.xz of them")
    p.add_argument("--force", action="store_true", help="recompute ids already in the table")
    p.add_argument("--limit", type=int, default=0, help="label only the first N structures")
    p.add_argument("--summary-json", metavar="PATH", help="write the run's counts and timings as JSON")

    p = add("train", cmd_train, "train eML (exp40) and esML (sML labels of `structures`) into model artifacts")
    p.add_argument("--seed", type=int, default=0)

    p = add("train-atom2vec", cmd_train_atom2vec, "train atom2vec-esML (JAX, CPU) into artifacts/atom2vec.json")
    p.add_argument("--dim", type=int, help="D_atom, numbers per element (default 3)")
    p.add_argument("--seeds", type=int, default=4, help="initialisations; the lowest validation loss is kept")
    _add_atom2vec_options(p)

    p = add("atom2vec-sweep", cmd_atom2vec_sweep, "atom2vec-esML hold-out accuracy for each D_atom (CSV + figure)")
    p.add_argument("--dims", default="1,2,3,4,5,6,7,8")
    p.add_argument("--seeds", type=int, default=2, help="initialisations per D_atom")
    p.add_argument("--output", help="folder (default: <home>/reports)")
    _add_atom2vec_options(p)

    p = add(
        "atom2vec-contributions", cmd_atom2vec_contributions,
        "each element's push toward fast Li conduction over many initialisations (CSV + figure)",
    )  # fmt: skip
    p.add_argument("--initialisations", type=int, default=100, help="random initialisations (paper: 1000)")
    p.add_argument("--dim", type=int, help="D_atom (default 3)")
    p.add_argument("--output", help="folder (default: <home>/reports)")
    _add_atom2vec_options(p)

    p = add("report", cmd_report, "Table I: every model on every data set beside the paper (Markdown, JSON, figure)")
    p.add_argument("--retrain", action="store_true", help="train the models again first")
    p.add_argument("--output", help="folder for table1.{json,md,png} (default: <home>/reports)")
    p.add_argument(
        "--no-measured", dest="no_measured", action="store_true",
        help="leave out the measured table (`lisearch validate`, run when the measured models are trained)",
    )  # fmt: skip

    p = add(
        "train-measured", cmd_train_measured, "train the measured-conductivity models on OBELiX (needs esML, atom2vec)"
    )

    p = add("validate", cmd_validate, "every model on measured conductivities (OBELiX): official split and grouped CV")
    p.add_argument("--output", help="folder for measured.{json,md,png} and measured_predictions.csv")
    p.add_argument("--no-sml", dest="no_sml", action="store_true", help="skip sML on the OBELiX structures (~20 s)")
    p.add_argument("--calibration-study", dest="calibration_study", action="store_true",
                   help="instead: each recalibration of P(fast) and cut-off rule on unseen chemical systems inside the "
                   "official training part (how the defaults were chosen; ~2 min)")  # fmt: skip

    p = add("shortlist", cmd_shortlist, "the best plausible candidates per chemical family, with reasons (Spark)")
    p.add_argument("--run-id", dest="run_id", help="screen run (run.id; default: the last that succeeded)")
    p.add_argument("--top-per-family", dest="top_per_family", type=int, help="rows per chemical family (default 3)")
    p.add_argument("--max-rows", dest="max_rows", type=int, help="rows in all (default 200)")
    p.add_argument("--show", type=int, help="rows to print (default 15)")

    p = add("score-measured", cmd_score_measured, "score a screen run's candidates with the measured models (Spark)")
    p.add_argument("--run-id", dest="run_id", help="screen run (run.id; default: the last that succeeded)")

    p = add("predict", cmd_predict, "score formulas with the trained models (no Spark)")
    p.add_argument("formulas", nargs="*")
    p.add_argument("--csv", help="CSV file with a `formula` column")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--output", help="write CSV here instead of printing")
    p.add_argument(
        "--models", help="comma-separated models to score with (esml,eml,atom2vec,measured; default: all trained)"
    )

    p = add(
        "materials",
        cmd_materials,
        "the top of a run's shortlist to predicted structures, relaxed, with energy above the hull (Spark)",
    )
    p.add_argument("--run-id", dest="run_id", help="screen run (run.id; default: the last that succeeded)")
    p.add_argument("--top", type=int, help="shortlist rows, by rank (materials.top, default 10)")
    p.add_argument("--formulas", nargs="+", help="these formulas instead of the shortlist (needs --run-id)")
    p.add_argument("--csv", help="CSV file with a `formula` column instead of the shortlist (needs --run-id)")
    p.add_argument("--restart", action="store_true", help="drop the run's materials rows first (default: resume)")
    p.add_argument("--candidates", type=int, help="structures per composition (materials.candidates, default 5)")
    p.add_argument("--fmax", type=float, help="force tolerance, eV/A (materials.fmax, default 0.1)")
    p.add_argument("--steps", type=int, help="relaxation step limit (materials.steps, default 300)")
    p.add_argument("--device", help="cpu (default) or cuda")
    p.add_argument("--show", type=int, default=50, help="rows to print (default 50)")

    p = add("mobility", cmd_mobility, "MD of a run's best materials and the combined ranking of its materials (Spark)")
    p.add_argument("--run-id", dest="run_id", help="screen run (run.id; default: the last that succeeded)")
    p.add_argument("--top", type=int, help="materials to simulate, best structure per formula by rank (default 3)")
    p.add_argument("--temperatures", help='K, e.g. "1000" or "1000,750,600,500" (mobility.temperatures)')
    p.add_argument("--md-ps", dest="md_ps", type=float, help="simulated ps per temperature (mobility.md_ps, default 5)")
    p.add_argument("--restart", action="store_true", help="drop the run's mobility rows first (default: resume)")
    p.add_argument("--show", type=int, default=30, help="ranking rows to print (default 30)")

    p = add(
        "validate-materials",
        cmd_validate_materials,
        "the materials stage against the Materials Project: hull on known compounds, structures leave one out",
    )
    p.add_argument("--known", type=int, default=300, help="known compounds for the hull check (0: skip)")
    p.add_argument("--loo", type=int, default=200, help="MP-stable compounds predicted leave one out (0: skip)")
    p.add_argument(
        "--table-iii",
        dest="table_iii",
        action="store_true",
        help="also the paper's 11 Table III oxides: best structure and E_hull of each (one process)",
    )
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    p.add_argument("--output", help="folder for materials_validation.json and the per-compound CSVs")
    p.add_argument("--candidates", type=int, help="structures per composition (materials.candidates, default 5)")
    p.add_argument("--fmax", type=float, help="force tolerance, eV/A (materials.fmax, default 0.1)")
    p.add_argument("--steps", type=int, help="relaxation step limit (materials.steps, default 300)")
    p.add_argument("--device", help="cpu (default) or cuda")

    p = add("structure-mobility", cmd_structure_mobility,
            "sML (five features, p_superionic) and BVSE barriers of CIF files, folders or archives")  # fmt: skip
    p.add_argument("paths", nargs="+", help="CIF files, folders of them, or .tar(.gz|.xz) archives")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--bvse-resolution", dest="bvse_resolution", type=float,
                   help="BVSE grid spacing, A (mobility.bvse_resolution, default 0.2)")  # fmt: skip

    p = add(
        "validate-mobility",
        cmd_validate_mobility,
        "sML and BVSE barriers on OBELiX's structures against measured conductivity; known fast vs poor conductors",
    )
    p.add_argument("--md", action="store_true", help="also MD of the known fast and poor conductors (hours)")
    p.add_argument("--no-obelix", dest="no_obelix", action="store_true", help="skip the OBELiX check")
    p.add_argument("--obelix-md", dest="obelix_md", type=int, default=0,
                   help="MD of this many ordered OBELiX structures (a fixed sample; 0: none)")  # fmt: skip
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    p.add_argument("--output", help="folder for mobility_validation.json and the per-structure CSVs")
    p.add_argument("--bvse-resolution", dest="bvse_resolution", type=float,
                   help="BVSE grid spacing, A (mobility.bvse_resolution, default 0.2)")  # fmt: skip
    p.add_argument("--md-ps", dest="md_ps", type=float, help="simulated ps per run (mobility.md_ps, default 5)")

    p = add(
        "predict-structure",
        cmd_predict_structure,
        "candidate crystal structures, relaxed by the potential, with their energy above the hull (no Spark)",
    )
    p.add_argument("formulas", nargs="*")
    p.add_argument("--csv", help="CSV file with a `formula` column")
    p.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table: without the CIF text; csv / json: with it (unless --cif-dir)",
    )
    p.add_argument("--cif-dir", dest="cif_dir", help="write each relaxed structure as a CIF file into this folder")
    p.add_argument("--candidates", type=int, help="structures per composition (materials.candidates, default 5)")
    p.add_argument("--fmax", type=float, help="force tolerance, eV/A (materials.fmax, default 0.1)")
    p.add_argument("--steps", type=int, help="relaxation step limit (materials.steps, default 300)")
    p.add_argument("--device", help="cpu (default) or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    p = add("screen", cmd_screen, "screen the composition space on Spark into `candidates`, `funnel`, `runs`")
    p.add_argument("--elements", help="partners of Li: 'all' or comma-separated symbols")
    p.add_argument("--exclude", help="comma-separated symbols to leave out")
    p.add_argument("--step", type=int, help="percent step (divides 100)")
    p.add_argument("--sizes", help="partner elements of Li, comma-separated: 2, 3 and 4 (quinaries), default 2,3")
    p.add_argument("--model", help="artifact name in the artifacts folder (esml) or a path")
    p.add_argument(
        "--oxidation-list", dest="oxidation_list", help="pymatgen_common|pymatgen_icsd|pymatgen_all|smact_icsd24"
    )
    p.add_argument("--max-cost", type=float, help="USD/kg")
    p.add_argument("--max-mass", type=float, help="mean atomic mass, g/mol")
    p.add_argument(
        "--run-id", dest="run_id", help="run id (run.id; default: a new one); re-using one replaces that run"
    )
    p.add_argument(
        "--resume", action="store_true", help="go on with a stopped run of this id from the partitions it finished"
    )
    p.add_argument("--summary-json", metavar="PATH")

    p = add("narrow", cmd_narrow, "narrow a screen run to stable oxides (`stable_oxides`) and compare with Table III")
    p.add_argument("--run-id", dest="run_id", help="screen run to narrow (run.id; default: the last that succeeded)")
    p.add_argument("--anion", help="element every candidate must contain (default O)")
    p.add_argument("--max-z", dest="max_z", type=int, help="largest atomic number (default 36)")
    p.add_argument("--top", type=int, help="rows to print")

    add("run", cmd_run, "run the pipeline end to end (reusing finished stages) and print a summary")

    p = add(
        "paper-study", cmd_paper_study,
        "sweep the choices the paper leaves open on a fixed sample: funnel shares and the Table III trace",
    )  # fmt: skip
    p.add_argument("--sample", type=int, default=400_000, help="compositions in the random sample (default 400000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and of esML's hold-out split")
    p.add_argument("--output", help="folder for paper_study.{md,json,csv,png} (default: <home>/reports)")

    p = add("sml-exp40", cmd_sml_exp40, "sML on the 40 experimental materials: published model and LOOCV refit")
    p.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the refit (features standardised)")
    p.add_argument("--json", action="store_true")

    p = add("compare-sendek", cmd_compare_sendek, "compare the featurizer with Sendek's 2017 values for 400 MP ids")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `lisearch`: run one sub-command; a LisearchError becomes its message and exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        result: Any = args.func(args)
        return int(result or 0)
    except LisearchError as exc:
        sys.stderr.write(f"lisearch {args.command}: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        return 130
    except Exception as exc:  # a Java failure or a bug: one paragraph here, the whole trace in the home's logs
        from lisearch.failures import debug_enabled, describe_failure

        if debug_enabled():
            raise
        home, jars = _paths_for_log(args)
        failure = describe_failure(exc, home, args.command, jars)
        sys.stderr.write(f"lisearch {args.command}: {failure.message}\n")
        return failure.exit_code


def _paths_for_log(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """(home, jars folder) of the command's settings, for the log of a failure; (None, None) when they cannot be had."""
    try:
        settings = load_settings(getattr(args, "profile", None), getattr(args, "set", None) or [])
        return settings.paths.home, settings.paths.jars_dir
    except Exception:
        return None, None


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["build_parser", "main"]
