"""The strategies a backtest can run: the built-in ones and the user's, without editing the package.

A user strategy is a function like the built-in ones (`vectorflow.backtest.strategies`): the bars
(and, when its second parameter is called `signals`, the signal frame) and keyword-only
parameters, one array per parameter holding a value per parameter set, returning (entries,
exits) or (entries, exits, short_entries, short_exits) of (bars x sets); `per_set` turns a
function of one set (scalar parameters, one column) into one. For example `~/strategies/mine.py`:

    from vectorflow.backtest.strategies import per_set

    @per_set
    def momentum(bars, *, lookback, threshold):
        '''Long while the close is `threshold` above its value `lookback` bars before.'''
        change = bars["close"].pct_change(lookback)
        return change > threshold, change < 0

with its grid in the settings file:

    [backtest]
    strategy_paths = ["~/strategies"]   # folders of *.py files; relative to the settings file
    [backtest.grids.momentum]
    lookback = [12, 24, 48]
    threshold = [0.01, 0.02]

Every public function defined in a folder's `*.py` file (not `_*.py`) whose parameters after the
bars (and signals) are keyword-only is a strategy named after it; the `vectorflow.strategies`
entry point group adds one strategy per entry point (named after it) from installed packages.
A parameter missing from the grid takes the function's default. Optional function attributes:
`signal_columns` (columns it reads; a unit without them is skipped), `valid` (a predicate on a
parameter set). `[backtest.grids.<name>]` also replaces a built-in strategy's grids.

A strategy that cannot be loaded (its file does not import, its grid names no parameter, its
name is taken) is still listed, under its function's name or its file's stem, and each of its
units fails with the reason and the file and line; every other strategy runs.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import logging
import traceback
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from pathlib import Path

from vectorflow.backtest.strategies import Strategy, all_strategies
from vectorflow.errors import InvalidInput, PermanentError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "vectorflow.strategies"


class StrategyError(PermanentError):
    """A strategy could not be loaded, or raised: its own units fail, the message says where."""


def where(exc: BaseException, source: str | None = None) -> str:
    """`file:line` of the deepest frame of `exc` in the strategy's file (else the deepest)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    path = source.rsplit(":", 1)[0] if source else None
    mine = [f for f in frames if path and f.filename == path]
    frame = (mine or frames or [None])[-1]
    return f"{frame.filename}:{frame.lineno}" if frame else (source or "?")


def _location(func) -> str:
    func = inspect.unwrap(func)  # per_set and other decorators: the user's own function
    try:
        return f"{inspect.getsourcefile(func)}:{inspect.getsourcelines(func)[1]}"
    except (OSError, TypeError):
        return getattr(func, "__module__", "?")


def _broken(name: str, error: str, source: str | None = None) -> Strategy:
    return Strategy(name, _never, f"broken: {error}", {"default": {}, "small": {}},
                    source=source, error=error)  # fmt: skip


def _never(*args, **kwargs):  # a broken strategy is never called: run_strategy fails it first
    raise AssertionError("a broken strategy was called")


def _signature(func) -> tuple[bool, dict[str, inspect.Parameter]] | None:
    """(takes the signal frame, keyword-only parameters) of a strategy function, else None."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keywords = {p.name: p for p in params if p.kind == p.KEYWORD_ONLY}
    if not keywords or len(positional) not in (1, 2):
        return None
    if len(positional) == 2 and positional[1].name != "signals":
        return None
    return len(positional) == 2, keywords


def _grid(name: str, keywords: dict[str, inspect.Parameter], grids: dict) -> dict[str, list]:
    """The strategy's grid: `[backtest.grids.<name>]`, defaults for what it leaves out."""
    given = dict(grids.get(name, {}))
    unknown = sorted(set(given) - set(keywords))
    if unknown:
        raise ValueError(f"[backtest.grids.{name}] names no parameter of {name}: "
                         f"{', '.join(unknown)} (it takes {', '.join(keywords)})")  # fmt: skip
    grid = {}
    for param in keywords.values():
        if param.name in given:
            grid[param.name] = list(given[param.name])
        elif param.default is not inspect.Parameter.empty:
            grid[param.name] = [param.default]
        else:
            raise ValueError(f"no values for {name}'s parameter {param.name!r}: add it to "
                             f"[backtest.grids.{name}] in the settings file")  # fmt: skip
    return grid


def function_strategy(name: str, func, grids: dict) -> Strategy:
    """A Strategy of a user function (a broken one, saying why, when it does not fit)."""
    source = _location(func)
    shape = _signature(func)
    if shape is None:
        return _broken(name, f"{name} ({source}) is not a strategy function: (bars, *, params) "
                       "or (bars, signals, *, params)", source)  # fmt: skip
    takes_signals, keywords = shape
    try:
        grid = _grid(name, keywords, grids)
    except ValueError as exc:
        return _broken(name, f"{exc} ({source})", source)
    summary = (inspect.getdoc(func) or name).splitlines()[0]
    return Strategy(name, func, summary, {"default": grid, "small": grid},
                    signal_columns=tuple(getattr(func, "signal_columns", ())),
                    valid=getattr(func, "valid", None), takes_signals=takes_signals,
                    source=source)  # fmt: skip


def _import_file(path: Path):
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(f"vectorflow_user_{path.stem}_{digest}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=64)
def _file_functions(path: Path, stamp: tuple) -> tuple[tuple[str, object], ...] | str:
    """The strategy-shaped public functions a file defines, or why it does not import."""
    try:
        module = _import_file(path)
    except Exception as exc:  # the user's code: any error fails only its own strategies
        return f"{path.name} does not import: {type(exc).__name__}: {exc} ({where(exc)})"
    return tuple(
        (name, func)
        for name, func in vars(module).items()
        if inspect.isfunction(func) and not name.startswith("_")
        and getattr(func, "__module__", None) == module.__name__ and _signature(func)
    )  # fmt: skip


def folder_strategies(folder: Path, grids: dict) -> list[Strategy]:
    """The strategies of every `*.py` file of a folder (a broken file: one broken strategy)."""
    if not folder.is_dir():
        return [_broken(folder.name, f"strategy folder {folder} does not exist", str(folder))]
    found = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        stat = path.stat()
        functions = _file_functions(path.resolve(), (stat.st_mtime_ns, stat.st_size))
        if isinstance(functions, str):
            found.append(_broken(path.stem, functions, str(path)))
        else:
            found += [function_strategy(name, func, grids) for name, func in functions]
    return found


def entry_point_strategies(grids: dict) -> list[Strategy]:
    """One strategy per `vectorflow.strategies` entry point (a function, or a Strategy)."""
    found = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = point.load()
        except Exception as exc:  # the package's code: fail only this strategy
            found.append(_broken(point.name, f"entry point {point.value} does not load: "
                                 f"{type(exc).__name__}: {exc} ({where(exc)})"))  # fmt: skip
            continue
        if isinstance(target, Strategy):
            found.append(_with_grid(replace(target, name=point.name), grids))
        else:
            found.append(function_strategy(point.name, target, grids))
    return found


def _with_grid(strategy: Strategy, grids: dict) -> Strategy:
    """A strategy with its `[backtest.grids.<name>]` grid, when the settings file gives one."""
    if strategy.name not in grids or strategy.error:
        return strategy
    given = dict(grids[strategy.name])
    if set(given) != set(strategy.params):
        return _broken(strategy.name, f"[backtest.grids.{strategy.name}] must give every "
                       f"parameter of {strategy.name}: {', '.join(strategy.params)} (got "
                       f"{', '.join(given) or 'none'})", strategy.source)  # fmt: skip
    grid = {k: list(given[k]) for k in strategy.params}
    return replace(strategy, grids={"default": grid, "small": grid})


@dataclass(frozen=True)
class StrategyLibrary:
    """Every strategy a backtest may run, by name: built-in first, then the user's."""

    strategies: dict[str, Strategy]

    def get(self, name: str) -> Strategy:
        """The strategy called `name`; InvalidInput names an unknown one."""
        try:
            return self.strategies[name]
        except KeyError:
            raise InvalidInput(
                f"unknown strategy {name!r}; expected one of {', '.join(self.strategies)}"
            ) from None

    def names(self) -> tuple[str, ...]:
        """Every strategy's name."""
        return tuple(self.strategies)


def strategy_library(cfg) -> StrategyLibrary:
    """The built-in strategies (with the settings file's grids) and the user's: the folders of
    `cfg.strategy_paths` (absolute, see `run.backtest_config`) and the entry points."""
    grids = {name: dict(grid) for name, grid in cfg.grids.items()}
    library = {s.name: _with_grid(s, grids) for s in all_strategies()}
    user = [s for folder in cfg.strategy_paths for s in folder_strategies(Path(folder), grids)]
    for strategy in user + entry_point_strategies(grids):
        if strategy.name in library:
            taken = library[strategy.name].source or "the built-in one"
            log.warning("strategy %s (%s) not registered: the name is taken by %s",
                        strategy.name, strategy.source, taken)  # fmt: skip
            continue
        library[strategy.name] = strategy
    return StrategyLibrary(library)
