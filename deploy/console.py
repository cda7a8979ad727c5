"""The one console the tool prints progress and errors to (stderr, so stdout stays for data).

Messages carry user text, paths and commands (`pip install -e '.[runner]'`, a values file in
`runs[1]/`), which rich would read as markup and eat: the helpers here print them as Text (never
parsed), and call sites that style a line themselves wrap the user text in `escape`."""

from rich.console import Console
from rich.markup import escape
from rich.text import Text

console = Console(stderr=True)

__all__ = ["console", "error", "escape", "log", "say", "warning"]


def log(message: str) -> None:
    """A progress line: `> message`."""
    _labelled(">", "bold cyan", message)


def say(message: str) -> None:
    """A plain line, printed as it is."""
    console.print(message, markup=False, highlight=False)


def warning(message: str) -> None:
    _labelled("warning:", "yellow", message)


def error(message: str) -> None:
    """The CLI's one error paragraph, never broken by the console (soft wrap)."""
    _labelled("error:", "bold red", message, soft_wrap=True)


def _labelled(label: str, style: str, message: str, soft_wrap: bool = False) -> None:
    console.print(Text.assemble((label, style), " ", message), highlight=False, soft_wrap=soft_wrap)
