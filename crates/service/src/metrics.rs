//! Request counts and latencies per route, in Prometheus' text format at `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS_US.len()],
    count: u64,
    sum_us: u64,
}

#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String), RouteStats>>,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    pub screened_subjects: AtomicU64,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, micros: u64) {
        let mut m = self.routes.lock().expect("metrics lock");
        let r = m
            .entry((method.to_string(), route.to_string()))
            .or_default();
        *r.by_status.entry(status).or_default() += 1;
        r.count += 1;
        r.sum_us += micros;
        for (i, &b) in BUCKETS_US.iter().enumerate() {
            if micros <= b {
                r.buckets[i] += 1;
            }
        }
    }

    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut s = String::new();
        s.push_str("# HELP cointrail_http_requests_total Requests answered, by route and status.\n# TYPE cointrail_http_requests_total counter\n");
        let m = self.routes.lock().expect("metrics lock");
        for ((method, route), r) in m.iter() {
            for (st, n) in &r.by_status {
                s.push_str(&format!(
                    "cointrail_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{st}\"}} {n}\n"
                ));
            }
        }
        s.push_str("# HELP cointrail_http_request_duration_seconds Time to answer, by route.\n# TYPE cointrail_http_request_duration_seconds histogram\n");
        for ((method, route), r) in m.iter() {
            let l = format!("method=\"{method}\",route=\"{route}\"");
            for (i, &b) in BUCKETS_US.iter().enumerate() {
                s.push_str(&format!(
                    "cointrail_http_request_duration_seconds_bucket{{{l},le=\"{}\"}} {}\n",
                    b as f64 / 1e6,
                    r.buckets[i]
                ));
            }
            s.push_str(&format!(
                "cointrail_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}\n",
                r.count
            ));
            s.push_str(&format!(
                "cointrail_http_request_duration_seconds_sum{{{l}}} {}\n",
                r.sum_us as f64 / 1e6
            ));
            s.push_str(&format!(
                "cointrail_http_request_duration_seconds_count{{{l}}} {}\n",
                r.count
            ));
        }
        drop(m);
        let counters = [
            (
                "cointrail_reloads_total",
                "Snapshots loaded after a change in the data directory.",
                &self.reloads,
            ),
            (
                "cointrail_reload_failures_total",
                "Reloads that failed (the previous snapshot kept serving).",
                &self.reload_failures,
            ),
            (
                "cointrail_screened_subjects_total",
                "Addresses, transactions and outputs screened.",
                &self.screened_subjects,
            ),
        ];
        for (name, help, v) in counters {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        for (name, help, v) in extra {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
            ));
        }
        s
    }
}
