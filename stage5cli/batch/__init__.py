"""`stage5 batch`: many scripts, one project each, in parallel worker processes, resumable.

    report = run_batch(["scripts/"], BatchOptions(style="film-noir", out=Path("out"),
                                                  generate=True, lock=True, exports=("json",)))
    write_report(report, Path("report.json")); write_junit(report, Path("junit.xml"))
    sys.exit(exit_code(report))

Each script gets its own project folder OUT/<stem>/ (stems that collide, case-insensitively,
become stem-2, stem-3 ... in path order) built by `pipeline.run`: init, (import the style
file,) lock the style, extract, optionally generate, lock-all, export. When it finishes, a
marker OUT/<stem>/batch.json records the script's sha256, the style and a hash of the options;
a later run with the same inputs skips the script, and a folder without the marker (a failed
or killed run) is rebuilt from scratch.

    options    BatchOptions, Style, Task, the usage checks
    discovery  which scripts, and the project folder name of each
    state      the batch.json markers: options hash, resume, clearing our own folders
    worker     one Task through pipeline.run -> BatchResult
    runner     run_batch, the Runner interface and LocalRunner (process pool, LLM cap, signals)
    report     BatchReport (JSON) and JUnit XML
"""

from .discovery import SCRIPT_EXTENSIONS, discover, project_names, safe_stem
from .options import (
    BatchOptions,
    Style,
    Task,
    check_options,
    check_output_file,
    default_jobs,
    resolve_style,
)
from .report import (
    BatchReport,
    Totals,
    build_report,
    exit_code,
    junit_xml,
    write_junit,
    write_report,
)
from .runner import (
    INTERRUPTED,
    LocalRunner,
    PlanEvent,
    ResultEvent,
    Runner,
    RunOutcome,
    StageEvent,
    prepare,
    run_batch,
)
from .state import MARKER, UP_TO_DATE, options_hash, read_marker
from .worker import BatchResult, blank_result, process, worker_backend

__all__ = [
    "BatchOptions", "Task", "Style", "discover", "project_names", "safe_stem", "resolve_style",
    "options_hash", "prepare", "process", "run_batch", "build_report", "exit_code",
    "write_report", "junit_xml", "write_junit", "worker_backend", "check_options",
    "check_output_file", "default_jobs", "read_marker", "blank_result", "BatchResult",
    "BatchReport", "Totals", "Runner", "LocalRunner", "RunOutcome", "PlanEvent", "StageEvent",
    "ResultEvent", "SCRIPT_EXTENSIONS", "MARKER", "UP_TO_DATE", "INTERRUPTED",
]
