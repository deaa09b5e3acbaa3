"""Evaluation reports: a Markdown table, a JSON file with every prediction, and a bar chart."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grounding_agent.eval.evaluator import CategoryMetrics, Metrics

__all__ = ['metrics_markdown', 'write_accuracy_chart', 'write_report']


def _percent(value: float | None) -> str:
    return '-' if value is None else f'{100.0 * value:.1f}'


def _rows(categories: Mapping[str, CategoryMetrics]) -> list[str]:
    return [
        f'| {c.name} | {c.n} | {_percent(c.acc_50)} | {_percent(c.acc_75)} '
        f'| {"-" if c.mean_iou is None else f"{c.mean_iou:.3f}"} |'
        for c in categories.values()
    ]


def metrics_markdown(metrics: Metrics, *, title: str | None = None) -> str:
    """The L-1 table (with the overall row), the L-2 table and the answer statistics."""
    head = [
        '| Category | N | Acc@0.5 (%) | Acc@0.75 (%) | mean IoU |',
        '|---|---:|---:|---:|---:|',
    ]
    lines = [f'## {title}', ''] if title else []
    lines += [*head, *_rows(metrics.by_l1), *_rows({'Overall': metrics.overall})]
    if metrics.by_l2:
        lines += ['', *head, *_rows(metrics.by_l2)]
    counts = ', '.join(f'{status} {n}' for status, n in metrics.status_counts.items())
    latency = '-' if metrics.mean_latency_ms is None else f'{metrics.mean_latency_ms:.1f} ms'
    lines += [
        '',
        'Rejection samples count as correct only when the answer is `rejected`; mean IoU is over '
        'positive samples.',
        '',
        f'- positive samples wrongly rejected: {_percent(metrics.wrongly_rejected)} % '
        f'of {metrics.n_positive}',
        f'- answers: {counts or "none"}',
        f'- mean latency per sample: {latency}',
    ]
    return '\n'.join(lines) + '\n'


def write_accuracy_chart(metrics: Metrics, path: str | Path, *, title: str = '') -> Path:
    """A PNG bar chart of Acc@0.5 and Acc@0.75 per L-1 category and overall."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    categories = [*metrics.by_l1.values(), metrics.overall]
    names = [f'{c.name}\n(n={c.n})' for c in categories]
    positions = list(range(len(categories)))
    width = 0.38
    figure, axes = plt.subplots(figsize=(max(5.0, 1.4 * len(categories) + 1.5), 4.0))
    try:
        bars = axes.bar(
            [p - width / 2 for p in positions],
            [100 * c.acc_50 for c in categories],
            width,
            label='Acc@0.5',
            color='#3b7dd8',
        )
        axes.bar(
            [p + width / 2 for p in positions],
            [100 * c.acc_75 for c in categories],
            width,
            label='Acc@0.75',
            color='#9ec1ef',
        )
        axes.bar_label(bars, fmt='%.1f', fontsize=8)
        axes.set_xticks(positions, names, fontsize=8)
        axes.set_ylim(0, 105)
        axes.set_ylabel('accuracy (%)')
        axes.set_title(title or 'Grounding accuracy (GroundingME protocol)')
        axes.legend(loc='lower right', fontsize=8)
        figure.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)
    return path


def write_report(
    out_dir: str | Path, metrics: Metrics, *, run: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """results.json (metrics + per-sample predictions), results.md and accuracy.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = dict(run or {})
    document = {
        'run': run,
        'metrics': metrics.to_dict(),
        'predictions': [score.to_dict() for score in metrics.samples],
    }
    paths = {
        'json': out / 'results.json',
        'markdown': out / 'results.md',
        'chart': out / 'accuracy.png',
    }
    paths['json'].write_text(json.dumps(document, indent=2) + '\n', encoding='utf-8')
    described = ', '.join(f'{key}: {value}' for key, value in run.items() if value)
    title = f'Evaluation ({described})' if described else 'Evaluation'
    paths['markdown'].write_text(metrics_markdown(metrics, title=title), encoding='utf-8')
    backend = run.get('backend')
    chart_title = f'{backend}: accuracy (GroundingME protocol)' if backend else ''
    write_accuracy_chart(metrics, paths['chart'], title=chart_title)
    return paths
