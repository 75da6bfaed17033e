"""Plain-text tables in Markdown's pipe syntax: readable in a terminal and pasteable into docs/."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    title: str
    headers: list[str]
    align: str = ""  # one letter per column, "l" or "r"; left when missing
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.headers)} columns")
        self.rows.append([str(cell) for cell in cells])

    def render(self) -> str:
        widths = [max(len(row[index]) for row in [self.headers, *self.rows]) for index in range(len(self.headers))]
        rights = [index < len(self.align) and self.align[index] == "r" for index in range(len(self.headers))]

        def line(cells: list[str]) -> str:
            padded = [
                cell.rjust(width) if right else cell.ljust(width)
                for cell, width, right in zip(cells, widths, rights, strict=True)
            ]
            return "| " + " | ".join(padded) + " |"

        dashes = [("-" * (width + 1)) + (":" if right else "-") for width, right in zip(widths, rights, strict=True)]
        rule = "|" + "|".join(dashes) + "|"
        parts = [f"### {self.title}", "", line(self.headers), rule, *(line(row) for row in self.rows)]
        if self.notes:
            parts.append("")
            parts.extend(f"- {note}" for note in self.notes)
        return "\n".join(parts)


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def dollars(amount: float) -> str:
    return f"${amount:.4f}" if amount < 10 else f"${amount:,.2f}"


def quantity(amount: float) -> str:
    return f"{amount:,.0f}" if amount >= 100 else f"{amount:,.2f}"


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def units(value: float) -> str:
    return f"{value:g}"


# --- 1 -----------------------------------------------------------------------------------------------
