//! Measurements and the table they end up in.

use std::time::{Duration, Instant};

/// One measured run: how many operations, how long in all, and each operation's latency.
#[derive(Debug, Clone)]
pub struct Run {
    /// Operations completed.
    pub ops: usize,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Per-operation latencies, sorted.
    latencies: Vec<Duration>,
}

impl Run {
    /// A run of `latencies.len()` operations (each as measured by its caller) that took
    /// `elapsed` in all.
    pub fn new(elapsed: Duration, mut latencies: Vec<Duration>) -> Self {
        latencies.sort_unstable();
        Self {
            ops: latencies.len(),
            elapsed,
            latencies,
        }
    }

    /// Several runs as one: their operations and wall times added up.
    pub fn combine(runs: Vec<Run>) -> Self {
        let elapsed = runs.iter().map(|run| run.elapsed).sum();
        let latencies = runs.into_iter().flat_map(|run| run.latencies).collect();
        Self::new(elapsed, latencies)
    }

    /// Operations per second over the whole run.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency below which `fraction` of the operations finished.
    pub fn percentile(&self, fraction: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.latencies.len() as f64) * fraction).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

/// The two sides of one comparison, measured in alternating rounds.
#[derive(Debug)]
pub struct Comparison {
    ours: Run,
    native: Run,
    /// Per round: our throughput over the native throughput.
    speedups: Vec<f64>,
}

impl Comparison {
    /// Rounds `ours[i]` and `native[i]` ran back to back.
    pub fn new(ours: Vec<Run>, native: Vec<Run>) -> Self {
        let speedups = ours
            .iter()
            .zip(&native)
            .map(|(ours, native)| ours.rate() / native.rate())
            .collect();
        Self {
            ours: Run::combine(ours),
            native: Run::combine(native),
            speedups,
        }
    }

    /// All of our rounds as one run.
    pub fn ours(&self) -> &Run {
        &self.ours
    }

    /// All of the native rounds as one run.
    pub fn native(&self) -> &Run {
        &self.native
    }

    /// The median over rounds of our throughput divided by the native throughput: a round
    /// pair shares the machine's mood, and the median ignores the rounds a neighbour spoiled.
    pub fn median_speedup(&self) -> f64 {
        median(self.speedups.clone())
    }
}

/// The median of `values` (NaN when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Time `operation` and keep its latency.
pub fn timed<T>(latencies: &mut Vec<Duration>, operation: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let value = operation();
    latencies.push(started.elapsed());
    value
}

/// The growth of `runs[scale]` over `runs[0]` (runs per size, one per round): the median over
/// rounds of the size's p50 over the first size's p50 in the same round.
pub fn growth(runs: &[Vec<Run>], scale: usize) -> f64 {
    median(
        runs[scale]
            .iter()
            .zip(&runs[0])
            .map(|(run, base)| {
                run.percentile(0.5).as_secs_f64() / base.percentile(0.5).as_secs_f64()
            })
            .collect(),
    )
}

/// Milliseconds with two decimals, or microseconds below one millisecond.
pub fn show_duration(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1_000.0 {
        format!("{micros:.0} µs")
    } else {
        format!("{:.2} ms", micros / 1_000.0)
    }
}

/// A rate rounded for reading.
pub fn show_rate(rate: f64) -> String {
    if rate >= 100.0 {
        format!("{rate:.0}/s")
    } else {
        format!("{rate:.1}/s")
    }
}

/// The result table, printed as Markdown.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    /// Add a row: what was measured, ours, the native baseline, the comparison, the target.
    pub fn row(
        &mut self,
        what: impl Into<String>,
        ours: impl Into<String>,
        native: impl Into<String>,
        comparison: impl Into<String>,
        target: impl Into<String>,
    ) {
        self.rows.push([
            what.into(),
            ours.into(),
            native.into(),
            comparison.into(),
            target.into(),
        ]);
    }

    /// The table as Markdown with aligned columns.
    pub fn render(&self) -> String {
        let header = [
            "measurement",
            "sqlite-wasm",
            "native rusqlite",
            "comparison",
            "target",
        ];
        let mut widths = header.map(|h| h.chars().count());
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 5]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
        for row in &self.rows {
            out.push_str(&line(row.each_ref().map(String::as_str)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let run = Run::new(
            Duration::from_secs(1),
            (1..=100).rev().map(Duration::from_millis).collect(),
        );
        assert_eq!(run.ops, 100);
        assert_eq!(run.percentile(0.5), Duration::from_millis(50));
        assert_eq!(run.percentile(0.99), Duration::from_millis(99));
        assert_eq!(run.rate(), 100.0);
    }

    #[test]
    fn the_speedup_is_the_median_of_the_round_ratios() {
        let run = |ms: u64| Run::new(Duration::from_millis(ms), vec![Duration::ZERO; 10]);
        let compared = Comparison::new(
            vec![run(10), run(10), run(100)],
            vec![run(20), run(30), run(10)],
        );
        assert_eq!(compared.median_speedup(), 2.0);
        assert_eq!(compared.ours().ops, 30);
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let mut table = Table::default();
        table.row("a", "1", "2", "0.5×", "≤ 1.3×");
        let text = table.render();
        let widths: Vec<usize> = text.lines().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{text}");
    }
}
