"""Values the UI draws, written the way Sematic 0.41's docs return them: a pandas
DataFrame (shown as a table with its statistics), a matplotlib figure and an ``Image``
(shown as pictures) and a ``Link`` (shown as a link), alone and together in a dataclass.

    python examples/sematic041/media.py [silent|local|cloud] [--detach]
"""

# Standard Library
import io
import math
import sys
from dataclasses import dataclass

# Third-party
import matplotlib.figure
import pandas as pd

# Sematic
import sematic
from sematic import KubernetesResourceRequirements, ResourceRequirements
from sematic.types import Image, Link

POD = ResourceRequirements(
    kubernetes=KubernetesResourceRequirements(requests={"cpu": "500m", "memory": "512Mi"})
)


@dataclass
class WeatherReport:
    table: pd.DataFrame
    figure: matplotlib.figure.Figure
    chart: Image
    dashboard: Link


@sematic.func(standalone=True, resource_requirements=POD)
def load_weather(days: int) -> pd.DataFrame:
    """A week of made-up measurements, loaded in a pod of its own on the cloud."""
    return pd.DataFrame(
        {
            "day": [f"2024-06-{day + 1:02d}" for day in range(days)],
            "temperature": [round(20 + 5 * math.sin(day / 2), 1) for day in range(days)],
            "rain_mm": [float(day % 3) * 2.5 for day in range(days)],
        }
    )


@sematic.func
def plot_temperature(table: pd.DataFrame) -> matplotlib.figure.Figure:
    figure = matplotlib.figure.Figure(figsize=(6, 3))
    axes = figure.subplots()
    axes.plot(table["day"], table["temperature"], marker="o")
    axes.set_title("Temperature")
    axes.set_ylabel("°C")
    axes.tick_params(axis="x", labelrotation=45)
    figure.tight_layout()
    return figure


@sematic.func(standalone=True, resource_requirements=POD)
def render_chart(figure: matplotlib.figure.Figure) -> Image:
    """The figure as a PNG image, as 0.41 recommends for pictures."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return Image(bytes=buffer.getvalue())


@sematic.func
def dashboard_link(table: pd.DataFrame) -> Link:
    first, last = table["day"].iloc[0], table["day"].iloc[-1]
    return Link(
        label=f"Weather dashboard, {first} to {last}",
        url=f"https://grafana.example.com/d/weather?from={first}&to={last}",
    )


@sematic.func
def make_report(
    table: pd.DataFrame, figure: matplotlib.figure.Figure, chart: Image, dashboard: Link
) -> WeatherReport:
    return WeatherReport(table=table, figure=figure, chart=chart, dashboard=dashboard)


@sematic.func
def pipeline(days: int) -> WeatherReport:
    """
    ## Weather report

    A table, a figure of it, the figure as an image, and a link to a dashboard.
    """
    table = load_weather(days)
    figure = plot_temperature(table)
    return make_report(table, figure, render_chart(figure), dashboard_link(table))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "local"
    future = pipeline(7).set(name="Media (0.41 style)", tags=["sematic041", "media"])
    if mode == "silent":
        runner = sematic.SilentRunner()
    elif mode == "cloud":
        runner = sematic.CloudRunner(detach="--detach" in sys.argv)
    else:
        runner = sematic.LocalRunner()
    report = runner.run(future)
    if isinstance(report, WeatherReport):
        print(report.table.to_string(index=False))
        print(f"{report.chart} {report.dashboard.label}: {report.dashboard.url}")
    else:  # CloudRunner(detach=True): the id of the run going on in the cluster
        print(report)


if __name__ == "__main__":
    main()
