"""A workflow run's graph laid out for the SVG the server draws (live/workflow_run.html): each
step in the column of its longest chain of dependencies, in its graph order within it; each
dependency a curve from the step it waits for."""

from dataclasses import dataclass
from functools import cache
from typing import Any

NODE_WIDTH, NODE_HEIGHT = 180, 44
COLUMN_GAP, ROW_GAP, MARGIN = 70, 18, 16


@dataclass(frozen=True)
class Node:
    name: str
    state: str
    run: str | None
    condition: str
    x: int
    y: int


@dataclass(frozen=True)
class Edge:
    path: str  # an SVG path's `d`
    condition: str  # of the step it leads to


@dataclass(frozen=True)
class Layout:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


def graph_layout(graph: list[dict[str, Any]], steps: dict[str, tuple[str, str | None]]) -> Layout:
    """`graph`: the workflow run's steps (name, depends_on, condition); `steps`: each one's state
    and run id."""
    depends_on = {node["name"]: node["depends_on"] for node in graph}

    @cache
    def column(name: str) -> int:
        return 1 + max((column(upstream) for upstream in depends_on[name]), default=-1)

    rows: dict[int, int] = {}
    nodes: dict[str, Node] = {}
    for node in graph:
        name = node["name"]
        col = column(name)
        row = rows[col] = rows.get(col, -1) + 1
        state, run = steps.get(name, ("pending", None))
        nodes[name] = Node(
            name=name,
            state=state,
            run=run,
            condition=node["condition"],
            x=MARGIN + col * (NODE_WIDTH + COLUMN_GAP),
            y=MARGIN + row * (NODE_HEIGHT + ROW_GAP),
        )
    edges = [
        Edge(path=_curve(nodes[upstream], nodes[node["name"]]), condition=node["condition"])
        for node in graph
        for upstream in node["depends_on"]
    ]
    columns = 1 + max(rows, default=0)
    most_rows = 1 + max(rows.values(), default=0)
    return Layout(
        nodes=list(nodes.values()),
        edges=edges,
        width=2 * MARGIN + columns * NODE_WIDTH + (columns - 1) * COLUMN_GAP,
        height=2 * MARGIN + most_rows * NODE_HEIGHT + (most_rows - 1) * ROW_GAP,
    )


def _curve(start: Node, end: Node) -> str:
    x1, y1 = start.x + NODE_WIDTH, start.y + NODE_HEIGHT // 2
    x2, y2 = end.x - 6, end.y + NODE_HEIGHT // 2  # the arrow's head ends at the box
    bend = COLUMN_GAP // 2
    return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
