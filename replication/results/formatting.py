"""How the tables print a number, an interval and a Markdown table (every table module)."""

from __future__ import annotations

import pandas as pd

NUMBER_FORMATS = {"fid": "{:.2f}", "kid_mean": "{:.4f}", "psnr": "{:.2f}"}  # others: 3 decimals


def fmt(value, column: str = "", signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return "—"
    text = NUMBER_FORMATS.get(column, "{:.3f}").format(value)
    return f"+{text}" if signed and value >= 0 else text


def interval_text(lo, hi, column: str = "", signed: bool = False) -> str:
    """' [lo, hi]', or '' where there is no interval."""
    if lo is None or pd.isna(lo):
        return ""
    return f" [{fmt(lo, column, signed)}, {fmt(hi, column, signed)}]"


def fmt_plain(value) -> str:
    """A paper value as the paper prints it (2.8, not 2.800000); — when there is none."""
    return "—" if value is None or pd.isna(value) else f"{value:g}"


def markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(no rows)_\n"
    safe = frame.astype(str).map(lambda s: s.replace("|", "\\|").replace("\n", " "))
    return safe.to_markdown(index=False, disable_numparse=True) + "\n"
