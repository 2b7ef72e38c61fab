//! `--report FILE.html`: a self-contained HTML page (inline CSS and SVG, no scripts, no external
//! resources) for one or more runs: summary tables, throughput over time, latency over time, and
//! an HDR-style latency percentile plot whose x axis is log10(1 / (1 - p)).

use std::fmt::Write as _;

use crate::bench::result::{LatencySummary, RunResult, group};

const WIDTH: f64 = 880.0;
const HEIGHT: f64 = 330.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 44.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 48.0;
const PALETTE: [&str; 8] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub dash: &'static str,
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Copy, PartialEq)]
pub enum XAxis {
    Linear,
    /// x = log10(1 / (1 - p)); ticks labelled 0%, 90%, 99%, 99.9%, ...
    Percentile,
}

/// A 1-2-5 step giving about `target` ticks over `range`.
pub fn nice_step(range: f64, target: f64) -> f64 {
    if !(range > 0.0 && range.is_finite()) {
        return 1.0;
    }
    let raw = range / target;
    let magnitude = 10f64.powf(raw.log10().floor());
    let normalized = raw / magnitude;
    let factor = if normalized < 1.5 {
        1.0
    } else if normalized < 3.0 {
        2.0
    } else if normalized < 7.0 {
        5.0
    } else {
        10.0
    };
    factor * magnitude
}

fn format_tick(value: f64, step: f64) -> String {
    if step >= 1.0 {
        group(value)
    } else {
        let decimals = (-step.log10().floor()) as usize;
        format!("{value:.decimals$}")
    }
}

fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x as usize).saturating_sub(2);
    format!("{p:.decimals$}%")
}

/// An SVG line chart.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    x_axis: XAxis,
    series: &[Series],
) -> String {
    let mut svg = String::new();
    // As many legend columns (up to three) as the longest name allows at ~6.5 px a character.
    let longest = series.iter().map(|s| s.name.chars().count()).max().unwrap_or(0) as f64;
    let legend_columns =
        (((WIDTH - LEFT - RIGHT) / (longest * 6.5 + 48.0)).floor() as usize).clamp(1, 3);
    let legend_rows = series.len().div_ceil(legend_columns);
    let height = HEIGHT + legend_rows as f64 * 16.0;
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let all =
        series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x_max, mut y_max) = (0f64, 0f64);
    for &(x, y) in all {
        x_max = x_max.max(x);
        y_max = y_max.max(y);
    }
    if x_axis == XAxis::Percentile {
        x_max = x_max.ceil().max(1.0);
    }
    let x_max = if x_max > 0.0 { x_max } else { 1.0 };
    let y_step = nice_step(if y_max > 0.0 { y_max } else { 1.0 }, 5.0);
    let y_top = ((y_max / y_step).ceil().max(1.0)) * y_step;
    let sx = |x: f64| LEFT + x / x_max * plot_width;
    let sy = |y: f64| TOP + plot_height - y / y_top * plot_height;

    let _ = write!(
        svg,
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" "#,
            r#"viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{t}">"#
        ),
        WIDTH = WIDTH,
        height = height,
        t = escape(title)
    );
    let _ = write!(svg, r##"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>"##);
    let _ = write!(svg, r#"<text x="{LEFT}" y="20" class="title">{}</text>"#, escape(title));
    // Grid and y ticks.
    let mut y = 0.0;
    while y <= y_top + y_step / 2.0 {
        let py = sy(y);
        let _ = write!(
            svg,
            concat!(
                r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e5e5e5"/>"##,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#
            ),
            LEFT + plot_width,
            LEFT - 6.0,
            py + 4.0,
            format_tick(y, y_step),
            LEFT = LEFT,
            py = py
        );
        y += y_step;
    }
    // X ticks.
    match x_axis {
        XAxis::Linear => {
            let x_step = nice_step(x_max, 8.0);
            let mut x = 0.0;
            while x <= x_max + x_step / 1000.0 {
                let px = sx(x);
                let _ = write!(
                    svg,
                    concat!(
                        r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" "##,
                        r##"stroke="#f0f0f0"/><text x="{px:.1}" y="{:.1}" "##,
                        r#"text-anchor="middle" class="tick">{}</text>"#
                    ),
                    TOP + plot_height,
                    TOP + plot_height + 16.0,
                    format_tick(x, x_step),
                    px = px,
                    TOP = TOP
                );
                x += x_step;
            }
        }
        XAxis::Percentile => {
            for decade in 0..=(x_max as usize) {
                let px = sx(decade as f64);
                let _ = write!(
                    svg,
                    concat!(
                        r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" "##,
                        r##"stroke="#f0f0f0"/><text x="{px:.1}" y="{:.1}" "##,
                        r#"text-anchor="middle" class="tick">{}</text>"#
                    ),
                    TOP + plot_height,
                    TOP + plot_height + 16.0,
                    percentile_label(decade as f64),
                    px = px,
                    TOP = TOP
                );
            }
        }
    }
    // Axes and labels.
    let _ = write!(
        svg,
        concat!(
            r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b:.1}" stroke="#333"/>"##,
            r##"<line x1="{LEFT}" y1="{b:.1}" x2="{r:.1}" y2="{b:.1}" stroke="#333"/>"##
        ),
        b = TOP + plot_height,
        r = LEFT + plot_width,
        LEFT = LEFT,
        TOP = TOP
    );
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">{}</text>"#,
        LEFT + plot_width / 2.0,
        HEIGHT - 8.0,
        escape(x_label)
    );
    let _ = write!(
        svg,
        concat!(
            r#"<text x="14" y="{:.1}" text-anchor="middle" class="axis" "#,
            r#"transform="rotate(-90 14 {:.1})">{}</text>"#
        ),
        TOP + plot_height / 2.0,
        TOP + plot_height / 2.0,
        escape(y_label)
    );
    // Lines.
    for s in series {
        let points: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if points.is_empty() {
            continue;
        }
        let _ = write!(
            svg,
            concat!(
                r#"<polyline fill="none" stroke="{}" stroke-width="1.8" stroke-dasharray="{}" "#,
                r#"points="{}"><title>{}</title></polyline>"#
            ),
            s.color,
            s.dash,
            points.join(" "),
            escape(&s.name)
        );
    }
    // Legend under the x axis label.
    for (i, s) in series.iter().enumerate() {
        let ly = HEIGHT + 4.0 + (i / legend_columns) as f64 * 16.0;
        let lx = LEFT + (i % legend_columns) as f64 * (plot_width / legend_columns as f64);
        let _ = write!(
            svg,
            concat!(
                r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" "#,
                r#"stroke-width="2" stroke-dasharray="{}"/>"#,
                r#"<text x="{:.1}" y="{:.1}" class="legend">{}</text>"#
            ),
            lx + 24.0,
            s.color,
            s.dash,
            lx + 30.0,
            ly + 4.0,
            escape(&s.name),
            lx = lx,
            ly = ly
        );
    }
    svg.push_str("</svg>");
    svg
}

fn curve_points(summary: &LatencySummary) -> Vec<(f64, f64)> {
    summary
        .curve
        .iter()
        .filter(|[p, _]| *p < 100.0)
        .map(|&[p, ms]| (-(1.0 - p / 100.0).max(1e-9).log10(), ms))
        .collect()
}

fn latency_table_row(out: &mut String, name: &str, s: &LatencySummary) {
    let _ = write!(
        out,
        concat!(
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td>",
            "<td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>"
        ),
        escape(name),
        group(s.count as f64),
        s.p50_ms,
        s.p90_ms,
        s.p99_ms,
        s.p999_ms,
        s.max_ms,
        s.mean_ms
    );
}

/// The whole page for `runs`.
pub fn report(runs: &[RunResult]) -> String {
    let mut html = String::new();
    html.push_str(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>spate bench report</title><style>\
         body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:960px}\
         table{border-collapse:collapse;margin:8px 0 16px}\
         td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}\
         td:first-child,th:first-child{text-align:left}th{background:#f6f6f6}\
         svg{display:block;margin:12px 0;border:1px solid #eee}\
         .title{font-size:15px;font-weight:600}.tick{font-size:11px;fill:#555}\
         .axis{font-size:12px;fill:#333}\
         .legend{font-size:12px;fill:#222}\
         pre{background:#f8f8f8;padding:8px;overflow:auto;font-size:12px}\
         .bad{color:#b00;font-weight:600}\
         </style></head><body>\n<h1>spate bench</h1>\n",
    );
    let _ = writeln!(
        html,
        "<p>{} run{}; generated {} by {}.</p>",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        crate::timefmt::rfc3339(crate::timefmt::epoch_seconds_now()),
        escape(runs.first().map(|r| r.tool.as_str()).unwrap_or("spate bench"))
    );
    for (i, run) in runs.iter().enumerate() {
        let _ = writeln!(
            html,
            concat!(
                "<h2 style=\"color:{}\">{}. {}</h2><p>{}<br>endpoint {} &middot; stream {} ",
                "&middot; {} shards &middot; {} on {} ({} CPUs, kernel {})</p>"
            ),
            PALETTE[i % PALETTE.len()],
            i + 1,
            escape(&run.name()),
            escape(&run.describe_workload()),
            escape(&run.endpoint),
            escape(&run.stream),
            run.shards,
            escape(&run.environment.time),
            escape(&run.environment.hostname),
            run.environment.nproc,
            escape(&run.environment.kernel)
        );
        let _ = writeln!(
            html,
            concat!(
                "<table><tr><th>throughput</th><th>records/s</th><th>MB/s</th><th>requests/s</th>",
                "<th>records</th><th>throttled</th><th>failed</th></tr>",
                "<tr><td>put</td><td>{}</td><td>{:.2}</td><td>{:.1}</td><td>{}</td><td>{}</td>",
                "<td>{}</td></tr><tr><td>consumed (all readers)</td><td>{}</td>",
                "<td>-</td><td>-</td><td>{}</td><td>{}</td><td>-</td></tr></table>"
            ),
            group(run.records_per_second),
            run.megabytes_per_second,
            run.requests_per_second,
            group(run.records_acked as f64),
            group(run.records_throttled as f64),
            group(run.records_failed as f64),
            group(run.consumers.records_per_second),
            group(run.consumers.records_consumed as f64),
            group(run.consumers.read_throttled as f64),
        );
        html.push_str(
            "<table><tr><th>latency ms</th><th>count</th><th>p50</th><th>p90</th><th>p99</th>\
             <th>p99.9</th><th>max</th><th>mean</th></tr>",
        );
        latency_table_row(&mut html, "put", &run.put_latency);
        if let Some(e2e) = &run.e2e_latency {
            latency_table_row(&mut html, "end-to-end (from ack)", e2e);
        }
        if let Some(e2e) = &run.e2e_from_send_latency {
            latency_table_row(&mut html, "end-to-end (from send)", e2e);
        }
        html.push_str("</table>\n");
        let c = &run.consumers;
        if c.polling + c.efo > 0 {
            let _ = writeln!(
                html,
                "<p>readers: {} polling, {} enhanced fan-out ({}); verification: {}</p>",
                c.polling,
                c.efo,
                escape(&c.efo_status),
                if c.verified {
                    "every acknowledged record read exactly once by every reader".to_string()
                } else {
                    "<span class=\"bad\">incomplete</span>".to_string()
                }
            );
        }
        let _ = writeln!(
            html,
            "<p>harness CPU {:.1}% of one core ({:.1}% of the machine), peak RSS {:.0} MiB</p>",
            run.harness.cpu_percent_of_one_core,
            run.harness.cpu_percent_of_machine,
            run.harness.max_resident_mib
        );
    }

    let multi = runs.len() > 1;
    let name = |run: &RunResult, what: &str| {
        if multi { format!("{}: {what}", run.name()) } else { what.to_string() }
    };
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    let mut percentiles = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        throughput.push(Series {
            name: name(run, "put records/s"),
            color,
            dash: "none",
            points: run
                .timeline
                .iter()
                .map(|p| (p.elapsed_seconds, p.put_records_per_second))
                .collect(),
        });
        if run.consumers.records_consumed > 0 {
            throughput.push(Series {
                name: name(run, "consumed records/s"),
                color,
                dash: "6 4",
                points: run
                    .timeline
                    .iter()
                    .map(|p| (p.elapsed_seconds, p.consumed_records_per_second))
                    .collect(),
            });
        }
        latency.push(Series {
            name: name(run, "put p99"),
            color,
            dash: "none",
            points: run.timeline.iter().map(|p| (p.elapsed_seconds, p.put_p99_ms)).collect(),
        });
        latency.push(Series {
            name: name(run, "put p50"),
            color,
            dash: "2 3",
            points: run.timeline.iter().map(|p| (p.elapsed_seconds, p.put_p50_ms)).collect(),
        });
        if run.e2e_latency.as_ref().is_some_and(|e| e.count > 0) {
            latency.push(Series {
                name: name(run, "end-to-end p99"),
                color,
                dash: "6 4",
                points: run.timeline.iter().map(|p| (p.elapsed_seconds, p.e2e_p99_ms)).collect(),
            });
        }
        percentiles.push(Series {
            name: name(run, "put"),
            color,
            dash: "none",
            points: curve_points(&run.put_latency),
        });
        if let Some(e2e) = run.e2e_latency.as_ref().filter(|e| e.count > 0) {
            percentiles.push(Series {
                name: name(run, "end-to-end (from ack)"),
                color,
                dash: "6 4",
                points: curve_points(e2e),
            });
        }
    }
    html.push_str("<h2>Charts</h2>\n");
    html.push_str(&line_chart(
        "Throughput over time",
        "seconds since start",
        "records/s",
        XAxis::Linear,
        &throughput,
    ));
    html.push_str(&line_chart(
        "Latency over time (per-second percentiles)",
        "seconds since start",
        "ms",
        XAxis::Linear,
        &latency,
    ));
    html.push_str(&line_chart(
        "Latency by percentile (HDR)",
        "percentile",
        "ms",
        XAxis::Percentile,
        &percentiles,
    ));
    html.push_str("<h2>Settings and environment</h2>\n");
    for run in runs {
        let mut shown = run.clone();
        shown.timeline.clear();
        shown.put_latency.curve.clear();
        if let Some(e) = shown.e2e_latency.as_mut() {
            e.curve.clear();
        }
        if let Some(e) = shown.e2e_from_send_latency.as_mut() {
            e.curve.clear();
        }
        let json = serde_json::to_string_pretty(&shown).unwrap_or_default();
        let _ = writeln!(
            html,
            "<details><summary>{}</summary><pre>{}</pre></details>",
            escape(&run.name()),
            escape(&json)
        );
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::result::TimelinePoint;
    use crate::histogram::Histogram;

    #[test]
    fn steps_and_labels() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(1000.0, 5.0), 200.0);
        assert_eq!(nice_step(0.7, 5.0), 0.1);
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(5.0), "99.999%");
    }

    #[test]
    fn report_is_self_contained() {
        let mut h = Histogram::new();
        for v in 1..5000 {
            h.record(v * 10);
        }
        let run = RunResult {
            label: Some("<run>".into()),
            put_latency: LatencySummary::from_histogram(&h),
            timeline: (1..=5)
                .map(|t| TimelinePoint {
                    elapsed_seconds: t as f64,
                    put_records_per_second: 1000.0 * t as f64,
                    put_p99_ms: 3.0,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let page = report(&[run.clone(), run]);
        assert!(page.starts_with("<!doctype html>"));
        assert_eq!(page.matches("<svg").count(), 3);
        assert!(page.contains("&lt;run&gt;"));
        assert!(!page.contains("<run>"));
        // Nothing is loaded from elsewhere: the only URL is the SVG namespace.
        let without_namespace = page.replace("http://www.w3.org/2000/svg", "");
        assert!(!without_namespace.contains("http://") && !without_namespace.contains("https://"));
        assert!(!page.contains("<script"));
    }
}
