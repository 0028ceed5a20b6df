"""What every chart riskops draws on the server shares: an SVG with no script, scaled to any width by its viewBox,
named for screen readers by an escaped title and description, in the same ink and line colours, with two axes.
Each chart (the console's, a KRI's history, a loss exceedance curve) draws its own marks inside."""

from dataclasses import dataclass

from markupsafe import escape

LINE, INK, GRID = "#0b57a4", "#1a1a1a", "#c8c8c8"


@dataclass(frozen=True)
class Frame:
    """A drawing `width` × `height` in its own units, with the plot inside the margins."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    font: int

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> int:
        return self.height - self.top - self.bottom

    def opening(self, chart_id: str, title: str, description: str) -> str:
        """The <svg> element's start, its title and its description."""
        return (
            f'<svg class="chart" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
            f'xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {self.width} {self.height}" '
            f'preserveAspectRatio="xMidYMid meet" font-size="{self.font}" fill="{INK}">'
            f'<title id="{chart_id}-title">{escape(title)}</title>'
            f'<desc id="{chart_id}-desc">{escape(description)}</desc>'
        )

    def axes(self) -> str:
        """The vertical axis on the left and the horizontal one at the bottom of the plot."""
        left, top, bottom = self.left, self.top, self.top + self.plot_h
        return (
            f'<line x1="{left}" x2="{left}" y1="{top}" y2="{bottom}" stroke="{INK}"/>'
            f'<line x1="{left}" x2="{left + self.plot_w}" y1="{bottom}" y2="{bottom}" stroke="{INK}"/>'
        )
