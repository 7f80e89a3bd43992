"""What the Prefect UI's Run form shows of each flow: choices, a UTC time picker, help text.

Prefect builds a deployment's form (its `parameter_openapi_schema`) from the flow's signature
and the `Args:` section of its docstring. `run_form` presents a flow's parameters to it as a
person filling in the form needs them, on the flow object only (Python callers keep the
function's own types and the library's checks with their one-line messages):

- a parameter named in `FORM_TYPES` gets its choices (`exchanges`: binance, bybit) or the UTC
  date and time picker (`since`, `until`); one named in `DESCRIPTIONS` gets that help text
  unless the flow's docstring (`Args:`) says more;
- an optional parameter (`X | None = None`) is shown as an optional field of its plain type with
  no default: as `X | None` the form shows a toggle saying 'Property is type "None"', and a
  `null` default fails the form's own validation; left empty, the run takes the settings file's
  value;
- `data_dir` is not on the form: a deployment's runs take the data dir from the worker's
  `VECTORFLOW_DATA_DIR`.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Annotated, Literal

from prefect.utilities.callables import parameter_docstrings
from pydantic import MISSING, Field, WithJsonSchema

from vectorflow.backtest.strategies import all_strategies
from vectorflow.exchanges.specs import MARKETS, SPECS
from vectorflow.lake.compact import range_datasets
from vectorflow.pipelines.market_data import MARKET_DATASETS
from vectorflow.settings.backtest import RANKABLE_METRICS
from vectorflow.timeframes import TIMEFRAMES

#: A UTC time: a date and time picker in UTC on the form. Python callers may also pass a date
#: (`2024-01-01`) or epoch milliseconds (`vectorflow.timeframes.parse_time`).
UtcTime = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2024-01-01T00:00:00Z"]}
    ),
]

Exchange = Literal[tuple(SPECS)]
Market = Literal[MARKETS]
Timeframe = Literal[TIMEFRAMES]

#: How a parameter of this name looks on every form (its choices, or the time picker).
FORM_TYPES: dict[str, object] = {
    "exchanges": list[Exchange],
    "markets": list[Market],
    "timeframes": list[Timeframe],
    "strategies": list[Literal[tuple(s.name for s in all_strategies())]],
    "metric": Literal[RANKABLE_METRICS],
    "grid": Literal["default", "small"],
    "datasets": list[Literal[tuple(MARKET_DATASETS)]],
    "period": Literal["5m", "15m", "30m", "1h", "4h", "1d"],
    "since": UtcTime,
    "until": UtcTime,
    "as_of": list[UtcTime],
}

#: The lake datasets compaction knows (its `datasets` parameter).
LAKE_DATASETS = list[Literal[tuple(ds.name for ds in range_datasets())]]

#: The help text of the series parameters, the same in every flow.
DESCRIPTIONS = {
    "exchanges": "Exchanges of the series. Empty: the settings file's [series] exchanges.",
    "markets": "Markets of the series (spot, linear): narrows which symbols are taken. Empty: "
    "the settings file's [series] markets.",
    "symbols": "Unified symbols, e.g. BTC/USDT (spot) or BTC/USDT:USDT (the linear perpetual). "
    "Empty: the settings file's [series] symbols.",
    "timeframes": "Candle timeframes. Empty: the settings file's [series] timeframes.",
}

#: Parameters no deployment form shows.
PYTHON_ONLY = ("data_dir",)


def _without_none(annotation: object) -> object:
    """`X | None` -> `X` (a union of several other types keeps them)."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return annotation
    kept = tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return kept[0] if len(kept) == 1 else typing.Union[kept]  # noqa: UP007 - built at run time


def _shown(
    parameter: inspect.Parameter, form_types: dict[str, object], documented: dict[str, str]
) -> inspect.Parameter:
    annotation = form_types.get(parameter.name, parameter.annotation)
    default = parameter.default
    if default is None:  # optional: its plain type, and no default on the form
        annotation, default = _without_none(annotation), MISSING
    if parameter.name in DESCRIPTIONS and parameter.name not in documented:
        default = Field(default=default, description=DESCRIPTIONS[parameter.name])
    return parameter.replace(annotation=annotation, default=default)


def run_form(flow, **form_types: object):
    """Present `flow`'s parameters to Prefect's form builder as the module docstring says;
    `form_types` gives a parameter of this flow another form type. Returns the flow."""
    signature = inspect.signature(flow.fn, eval_str=True)
    chosen = FORM_TYPES | form_types
    documented = parameter_docstrings(inspect.getdoc(flow.fn))
    shown = [_shown(p, chosen, documented) for p in signature.parameters.values()
             if p.name not in PYTHON_ONLY]  # fmt: skip
    flow.__signature__ = signature.replace(parameters=shown)  # what `prefect deploy` reads
    return flow
