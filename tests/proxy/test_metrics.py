"""/metrics as Prometheus reads it: HELP on every series, exact values, few label values."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from proxy.metrics import Metrics


def _families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_every_series_has_help_and_big_values_keep_every_digit() -> None:
    metrics = Metrics()
    metrics.question()
    metrics.answered("done", 1.5, 0.2)
    metrics.upstream_call("start", "ok", 0.3)
    metrics.upstream_call("poll", "503", 0.1)
    metrics.set_inflight(123_456_789)
    text = metrics.render({"docschat_jobs_overdue": ("Overdue answers.", 1_234_567.0)}).decode()

    families = _families(text)
    assert all(f.documentation for f in families.values()), text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    # Written the way Prometheus's own Go client writes floats: every digit kept, no %g rounding.
    assert samples[("docschat_jobs_inflight", ())] == 123_456_789
    assert samples[("docschat_jobs_overdue", ())] == 1_234_567
    assert "1.23457e+06" not in text
    errors = ("docschat_upstream_errors_total", (("operation", "poll"), ("status", "503")))
    assert samples[errors] == 1
    assert 'docschat_upstream_errors_total{operation="start"' not in text  # "ok" is no error


def test_http_label_values_stay_few_whatever_clients_send() -> None:
    metrics = Metrics()
    for method in ("GET", "BREW", "X" * 50):
        metrics.http_request("/api/sessions/<sid>/messages", method, 200, 0.01)
    family = _families(metrics.render().decode())["docschat_http_requests"]
    methods = sorted(s.labels["method"] for s in family.samples if s.name.endswith("_total"))
    assert methods == ["GET", "other"]
