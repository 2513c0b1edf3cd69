//! Minimal SVG line charts for the live curves.

use leptos::prelude::*;

/// One named series of y values (x = index), drawn in `color`.
#[derive(Clone, PartialEq)]
pub struct Series {
    pub name: &'static str,
    pub color: &'static str,
    pub values: Vec<f32>,
}

const W: f32 = 320.0;
const H: f32 = 140.0;
const PAD: f32 = 24.0;

fn points(values: &[f32], lo: f32, hi: f32, n: usize) -> String {
    let span = (hi - lo).max(1e-6);
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = PAD + (W - 2.0 * PAD) * if n > 1 { i as f32 / (n - 1) as f32 } else { 0.5 };
            let y = H - PAD - (H - 2.0 * PAD) * (v - lo) / span;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[component]
pub fn LineChart(
    title: &'static str,
    series: Signal<Vec<Series>>,
    #[prop(optional)] unit_range: bool,
) -> impl IntoView {
    let bounds = move || {
        let s = series.get();
        let all = s.iter().flat_map(|s| s.values.iter().copied()).filter(|v| v.is_finite());
        let (lo, hi) = all.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let n = s.iter().map(|s| s.values.len()).max().unwrap_or(0);
        if unit_range {
            (0.0, 1.0, n)
        } else if lo.is_finite() {
            (lo.min(0.0), hi.max(lo + 1e-3), n)
        } else {
            (0.0, 1.0, n)
        }
    };
    view! {
        <figure class="chart">
            <figcaption>{title}</figcaption>
            <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none">
                <line x1=PAD y1=H - PAD x2=W - PAD y2=H - PAD class="axis"/>
                <line x1=PAD y1=PAD x2=PAD y2=H - PAD class="axis"/>
                <text x="2" y=PAD class="tick">{move || format!("{:.2}", bounds().1)}</text>
                <text x="2" y=H - PAD class="tick">{move || format!("{:.2}", bounds().0)}</text>
                {move || {
                    let (lo, hi, n) = bounds();
                    series.get().into_iter().map(|s| view! {
                        <polyline fill="none" stroke=s.color stroke-width="2" points=points(&s.values, lo, hi, n)/>
                    }).collect_view()
                }}
            </svg>
            <div class="legend">
                {move || series.get().into_iter().map(|s| view! { <span style:color=s.color>"— " {s.name}</span> }).collect_view()}
            </div>
        </figure>
    }
}
