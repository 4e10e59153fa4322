//! One transport's burst: a cell per message (green: back, with its arrival order; red: lost;
//! amber: came back after a later one), and a summary.

use yew::prelude::*;

use crate::components::widgets::fmt_ms;
use crate::i18n::Lang;
use crate::state::udp::Run;

#[derive(Properties, PartialEq)]
pub struct BurstViewProps {
    pub lang: Lang,
    /// `udp` or `ws` (the element is `#udp-burst` / `#ws-burst`).
    pub id: &'static str,
    pub title: &'static str,
    pub run: Run,
}

fn summary(l: Lang, title: &str, run: &Run, late: usize) -> String {
    let (n, back) = (run.sent.len(), run.back.len());
    let mut summary = format!("{title}: {back}/{n} {}", l.t("back", "返回"));
    if run.done && n > back {
        summary.push_str(&format!(" · {} {}", n - back, l.t("lost", "丢失")));
    }
    summary.push_str(&if late > 0 {
        format!(" · {late} {}", l.t("out of order", "乱序"))
    } else {
        format!(" · {}", l.t("in order", "按顺序"))
    });
    if let (Some(p50), Some(p99)) = (run.rtt_percentile(0.5), run.rtt_percentile(0.99)) {
        summary.push_str(&format!(" · RTT p50 {} · p99 {}", fmt_ms(p50), fmt_ms(p99)));
    }
    summary
}

#[component]
pub fn BurstView(props: &BurstViewProps) -> Html {
    let (l, run) = (props.lang, &props.run);
    let late = run.late();
    let n = run.sent.len();
    let cell = |seq: usize| {
        let (class, label, title) = match run.back.get(&seq) {
            Some((order, rtt)) => (
                if late.contains(&seq) {
                    "cell back late"
                } else {
                    "cell back"
                },
                format!("{}", order + 1),
                format!("#{seq} ↩{} {}", order + 1, fmt_ms(*rtt)),
            ),
            None if run.done => (
                "cell lost",
                "×".to_owned(),
                format!("#{seq} {}", l.t("lost", "丢失")),
            ),
            None => ("cell wait", "·".to_owned(), format!("#{seq}")),
        };
        let color = match class {
            "cell back" => "#2e7d32",
            "cell back late" => "#b26a00",
            "cell lost" => "#c62828",
            _ => "#888",
        };
        html! {
            <li class={class} title={title}
                style={format!("min-width:1.6em;text-align:center;font-size:11px;color:#fff;background:{color};border-radius:3px")}>
                { label }
            </li>
        }
    };
    html! {
        <div class={classes!("burst", props.id)} id={format!("{}-burst", props.id)}
            data-back={run.back.len().to_string()} data-sent={n.to_string()} data-done={run.done.to_string()}>
            <p class="small">{ summary(l, props.title, run, late.len()) }</p>
            <ol class="cells" style="display:flex;flex-wrap:wrap;gap:2px;list-style:none;padding:0;margin:0">
                { for (0..n).map(cell) }
            </ol>
        </div>
    }
}
