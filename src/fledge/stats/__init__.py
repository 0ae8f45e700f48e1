"""Stats of a run: the reporter the run owns and its writers (console, TensorBoard, CSV)."""

from fledge.stats.console import ConsoleWriter, format_summary_line
from fledge.stats.csv_writer import CSVWriter
from fledge.stats.reporter import HYPERPARAMETERS, Aggregation, StatsReporter, StatSummary, StatsWriter
from fledge.stats.tensorboard import TensorboardWriter

__all__ = [
    "HYPERPARAMETERS",
    "Aggregation",
    "CSVWriter",
    "ConsoleWriter",
    "StatSummary",
    "StatsReporter",
    "StatsWriter",
    "TensorboardWriter",
    "format_summary_line",
]
