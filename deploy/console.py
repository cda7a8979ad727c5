"""The one console the tool prints progress and errors to (stderr, so stdout stays for data)."""

from rich.console import Console

console = Console(stderr=True)


def log(message: str) -> None:
    console.print(f"[bold cyan]>[/] {message}", highlight=False)
