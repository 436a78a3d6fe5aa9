"""Words on screen: text from a user shown literally, an invalid setting said plainly, and measured
numbers stated honestly against the theory."""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import streamlit as st

# Every character Markdown (CommonMark, GitHub's autolinks, Streamlit's $math$, :emoji: and :colour[...])
# gives a meaning to; a backslash before each shows it as itself.
WORD_JOINER = "\u2060"
MARKDOWN_SPECIALS = frozenset("\\`*_{}[]()<>#+-.!|$~:=&\"'^")


def literal(text: Any) -> str:
    """Text that came from a user (a URL value, a typed list, an error message quoting them) made safe to
    put inside Markdown: it shows exactly as typed, never as a link, an image, a formula or markup."""
    escaped = "".join("\\" + char if char in MARKDOWN_SPECIALS else char for char in str(text))
    # GitHub's autolinks ignore escapes: an invisible word joiner after "www", "@" and "://"'s colon keeps
    # an address from becoming a link (or an image fetch) while it reads the same.
    for trigger in ("www", "@", "\\:"):
        escaped = re.sub(re.escape(trigger), lambda match: match.group(0) + WORD_JOINER, escaped, flags=re.IGNORECASE)
    return escaped.replace("\n", " ")


def show_invalid(error: Exception) -> None:
    """An invalid setting, said plainly, in place of the figure it would have drawn. The field is the
    code's name for it; the message quotes what the user gave, so it is shown literally."""
    field, _, message = str(error).partition(": ")
    st.error(f"**This setting cannot be used** — `{field}`: {literal(message)}" if message
             else literal(error), icon=":material/warning:")


def layer_list(depths: list[int]) -> str:
    """'1 layer', '2, 3 and 4 layers'."""
    words = ", ".join(map(str, depths[:-1])) + (" and " if len(depths) > 1 else "") + str(depths[-1])
    return f"{words} layer{'s' if depths != [1] else ''}"


def risk_text(risk: float, risk_se: float) -> str:
    """A measured risk with its standard error: '2.259 ± 0.010'."""
    return f"{risk:.3f} ± {risk_se:.3f}" if np.isfinite(risk_se) else f"{risk:.3f}"


def compared_with(risk: float, risk_se: float, theory_risk: float, name: str) -> tuple[str, str]:
    """How a measured risk stands against a theory line, honestly: within 2 standard errors it is *at*
    the line (noise never beats the theory). Returns (words, st.metric delta_color)."""
    difference = risk - theory_risk
    if not np.isfinite(risk_se) or abs(difference) <= 2 * risk_se:
        return "at the theory line (±2 SE)", "off"
    return f"{difference:+.3f} vs {name}", "inverse"
