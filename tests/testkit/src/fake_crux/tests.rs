//! The fake against its own contract, over real HTTP: shapes, markers, history, errors,
//! quota, latency and counters.

use std::collections::BTreeSet;

use super::*;
use axum::http::header;

const KEY: &str = "crux-test-key";

fn config() -> FakeCruxConfig {
    FakeCruxConfig { api_key: Some(KEY.into()), ..FakeCruxConfig::new() }
}

fn unlimited() -> FakeCruxConfig {
    FakeCruxConfig { quota: None, ..config() }
}

async fn post_raw(client: &reqwest::Client, url: &str, body: String) -> (u16, Value) {
    let response = client
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .expect("request to fake CrUX");
    let status = response.status().as_u16();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body = response.json::<Value>().await.expect("JSON body");
    assert_eq!(content_type.as_ref().and_then(|v| v.to_str().ok()), Some(JSON_CONTENT_TYPE));
    (status, body)
}

async fn post(client: &reqwest::Client, fake: &FakeCrux, endpoint: Endpoint, body: &Value) -> (u16, Value) {
    post_raw(client, &format!("{}?key={KEY}", fake.endpoint(endpoint)), body.to_string()).await
}

async fn record(client: &reqwest::Client, fake: &FakeCrux, body: Value) -> (u16, Value) {
    post(client, fake, Endpoint::QueryRecord, &body).await
}

async fn history(client: &reqwest::Client, fake: &FakeCrux, body: Value) -> (u16, Value) {
    post(client, fake, Endpoint::QueryHistoryRecord, &body).await
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn metric(name: &str) -> &'static HistogramMetric {
    HISTOGRAM_METRICS.iter().find(|m| m.name == name).expect("a histogram metric")
}

fn not_found_body() -> Value {
    json!({"error": {"code": 404, "message": "chrome ux report data not found", "status": "NOT_FOUND"}})
}

fn date(year: i32, month: u32, day: u32) -> Value {
    json!({"year": year, "month": month, "day": day})
}

/// A p75 (or a history week's p75) in the metric's units, checking CLS's two-decimal string.
fn units(metric: &HistogramMetric, value: &Value) -> u64 {
    if metric.cls {
        let text = value.as_str().unwrap_or_else(|| panic!("CLS p75 {value} is not a string"));
        assert_eq!(text.split_once('.').map(|(_, decimals)| decimals.len()), Some(2), "{text}");
        (text.parse::<f64>().expect("CLS number") * 100.0).round() as u64
    } else {
        value.as_u64().unwrap_or_else(|| panic!("{} p75 {value} is not an integer", metric.name))
    }
}

fn ten_thousandths(value: &Value) -> u32 {
    (value.as_f64().unwrap_or_else(|| panic!("density {value}")) * 10_000.0).round() as u32
}

/// Checks the bins against the thresholds and the densities against the p75's category;
/// returns the p75 and the densities.
fn check_histogram(metric: &HistogramMetric, bins: &Value, p75: &Value, density_key: &str) -> (u64, [u32; 3]) {
    let bins = bins.as_array().expect("histogram bins");
    assert_eq!(bins.len(), 3, "{}", metric.name);
    let edges = [(0, Some(metric.good)), (metric.good, Some(metric.poor)), (metric.poor, None)];
    for (bin, (start, end)) in bins.iter().zip(edges) {
        assert_eq!(bin["start"], metric.format(start), "{}", metric.name);
        match end {
            Some(end) => assert_eq!(bin["end"], metric.format(end), "{}", metric.name),
            None => assert!(bin.get("end").is_none(), "{}: the last bin is open", metric.name),
        }
    }
    let densities = [0, 1, 2].map(|i| ten_thousandths(&bins[i][density_key]));
    assert_eq!(densities.iter().sum::<u32>(), 10_000, "{} {densities:?}", metric.name);
    let p75 = units(metric, p75);
    assert_ne!(p75, metric.good, "{}: p75 on a threshold", metric.name);
    assert_ne!(p75, metric.poor, "{}: p75 on a threshold", metric.name);
    match metric.category(p75) {
        0 => assert!(densities[0] >= 7_500, "{} good p75 {p75}, {densities:?}", metric.name),
        1 => {
            assert!(densities[0] < 7_500 && densities[0] + densities[1] >= 7_500, "{} {p75} {densities:?}", metric.name)
        }
        _ => assert!(densities[0] + densities[1] < 7_500, "{} poor p75 {p75}, {densities:?}", metric.name),
    }
    (p75, densities)
}

fn record_p75(body: &Value, name: &str) -> u64 {
    units(metric(name), &body["record"]["metrics"][name]["percentiles"]["p75"])
}

fn fractions_sum(fractions: &Value) -> u32 {
    fractions.as_object().expect("fractions").values().map(ten_thousandths).sum()
}

/// A record computed without HTTP, for loops over many identifiers.
fn direct(endpoint: Endpoint, body: Value) -> Option<Value> {
    let request = CruxRequest::parse(endpoint, body.to_string().as_bytes()).expect("valid body");
    let last_date = FakeCruxConfig::new().last_date;
    Subject::find(&request, false).and_then(|s| match endpoint {
        Endpoint::QueryRecord => s.record(last_date),
        Endpoint::QueryHistoryRecord => s.history(last_date),
    })
}

const TIMINGS: [&str; 4] = [LCP, INP, FCP, TTFB];

#[tokio::test]
async fn url_record_has_the_crux_shape() {
    let fake = FakeCrux::start(config());
    assert_eq!(fake.api_url(), format!("http://{}/v1", fake.addr()));
    assert_eq!(fake.record_endpoint(), format!("{}/records:queryRecord", fake.api_url()));
    assert_eq!(fake.history_endpoint(), format!("{}/records:queryHistoryRecord", fake.api_url()));
    let client = reqwest::Client::new();
    let url = "https://example.com/shop/cart";
    let (status, body) = record(&client, &fake, json!({"url": url, "formFactor": "PHONE"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), set(&["record"]), "an already normal URL has no urlNormalizationDetails");
    let record = &body["record"];
    assert_eq!(keys(record), set(&["key", "metrics", "collectionPeriod"]));
    assert_eq!(record["key"], json!({"formFactor": "PHONE", "url": url}));
    assert_eq!(record["collectionPeriod"], json!({"firstDate": date(2026, 11, 1), "lastDate": date(2026, 11, 28)}));

    let metrics = &record["metrics"];
    assert_eq!(keys(metrics), set(&[LCP, INP, CLS, FCP, TTFB, NAVIGATION_TYPES, LCP_RESOURCE_TYPE, LCP_IMAGE_TTFB]));
    for metric in &HISTOGRAM_METRICS {
        let value = &metrics[metric.name];
        assert_eq!(keys(value), set(&["histogram", "percentiles"]), "{}", metric.name);
        check_histogram(metric, &value["histogram"], &value["percentiles"]["p75"], "density");
    }
    assert_eq!(
        metrics[CLS]["histogram"][1],
        json!({"start": "0.10", "end": "0.25", "density": metrics[CLS]["histogram"][1]["density"]})
    );
    assert_eq!(metrics[LCP]["histogram"][2]["start"], 4000);

    let navigation = &metrics[NAVIGATION_TYPES]["fractions"];
    assert_eq!(
        keys(navigation),
        set(&["navigate", "navigate_cache", "reload", "restore", "back_forward", "back_forward_cache", "prerender"])
    );
    assert_eq!(fractions_sum(navigation), 10_000);
    assert_eq!(keys(&metrics[LCP_RESOURCE_TYPE]["fractions"]), set(&["image", "text"]));
    assert_eq!(fractions_sum(&metrics[LCP_RESOURCE_TYPE]["fractions"]), 10_000);
    assert_eq!(keys(&metrics[LCP_IMAGE_TTFB]), set(&["percentiles"]));
    assert!(metrics[LCP_IMAGE_TTFB]["percentiles"]["p75"].is_u64());
}

#[tokio::test]
async fn origin_record_for_all_form_factors_has_form_factor_fractions() {
    let fake = FakeCrux::start(config());
    let client = reqwest::Client::new();
    let (status, body) = record(&client, &fake, json!({"origin": "https://Example.com/"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), set(&["record"]), "origins carry no urlNormalizationDetails");
    assert_eq!(body["record"]["key"], json!({"origin": "https://example.com"}));
    let form_factors = &body["record"]["metrics"][FORM_FACTORS]["fractions"];
    assert_eq!(keys(form_factors), set(&["desktop", "phone", "tablet"]));
    assert_eq!(fractions_sum(form_factors), 10_000);
    assert!(form_factors["phone"].as_f64() > form_factors["desktop"].as_f64());

    let (status, same) =
        record(&client, &fake, json!({"origin": "https://example.com", "formFactor": "ALL_FORM_FACTORS"})).await;
    assert_eq!((status, &same), (200, &body), "ALL_FORM_FACTORS is the same as no form factor");
    let (_, phone) = record(&client, &fake, json!({"origin": "https://example.com", "formFactor": "PHONE"})).await;
    assert!(phone["record"]["metrics"].get(FORM_FACTORS).is_none(), "form_factors only without a form factor");
}

#[tokio::test]
async fn urls_are_normalized_and_the_change_reported() {
    let fake = FakeCrux::start(config());
    let client = reqwest::Client::new();
    let (_, canonical) =
        record(&client, &fake, json!({"url": "https://example.com/page", "formFactor": "DESKTOP"})).await;
    for (sent, normalized) in [
        ("https://example.com", "https://example.com/"),
        ("https://example.com/page#reviews", "https://example.com/page"),
        ("HTTPS://Example.COM/page?utm_source=news&id=3", "https://example.com/page"),
        ("https://example.com:8443/a/b/?x#y", "https://example.com:8443/a/b/"),
    ] {
        let (status, body) = record(&client, &fake, json!({"url": sent, "formFactor": "DESKTOP"})).await;
        assert_eq!(status, 200, "{sent}: {body}");
        assert_eq!(body["urlNormalizationDetails"], json!({"originalUrl": sent, "normalizedUrl": normalized}));
        assert_eq!(body["record"]["key"]["url"], normalized);
        if normalized == "https://example.com/page" {
            assert_eq!(body["record"], canonical["record"], "{sent} is the same record");
        }
    }
    let (_, history) = history(&client, &fake, json!({"url": "https://example.com/page#x"})).await;
    assert_eq!(
        history["urlNormalizationDetails"],
        json!({"originalUrl": "https://example.com/page#x", "normalizedUrl": "https://example.com/page"})
    );
}

#[tokio::test]
async fn records_are_deterministic_and_differ_by_identifier_and_form_factor() {
    let first = FakeCrux::start(config());
    let second = FakeCrux::start(FakeCruxConfig { seed: Some(99), ..config() });
    let client = reqwest::Client::new();
    let phone = json!({"url": "https://shop.example/item/1", "formFactor": "PHONE"});
    let (_, a) = record(&client, &first, phone.clone()).await;
    let (_, b) = record(&client, &second, phone.clone()).await;
    let (_, again) = record(&client, &first, phone).await;
    assert_eq!(a, b, "another server answers the same");
    assert_eq!(a, again);
    let (_, ha) = history(&client, &first, json!({"url": "https://shop.example/item/1", "formFactor": "PHONE"})).await;
    let (_, hb) = history(&client, &second, json!({"url": "https://shop.example/item/1", "formFactor": "PHONE"})).await;
    assert_eq!(ha, hb);

    let (_, desktop) =
        record(&client, &first, json!({"url": "https://shop.example/item/1", "formFactor": "DESKTOP"})).await;
    let (_, other) =
        record(&client, &first, json!({"url": "https://shop.example/item/2", "formFactor": "PHONE"})).await;
    let (_, origin) = record(&client, &first, json!({"origin": "https://shop.example", "formFactor": "PHONE"})).await;
    for different in [&desktop, &other, &origin] {
        assert_ne!(a["record"]["metrics"], different["record"]["metrics"]);
    }
    for name in TIMINGS {
        assert!(record_p75(&desktop, name) < record_p75(&a, name), "{name}: desktop should be faster");
    }
}

#[test]
fn field_values_are_plausible_consistent_and_faster_on_desktop() {
    let mut desktop_faster = 0;
    let mut comparisons = 0;
    for i in 0..150 {
        let url = format!("https://site{i}.example/page/{i}");
        let mut p75s = HashMap::new();
        for form_factor in ["PHONE", "DESKTOP", "TABLET", "ALL_FORM_FACTORS"] {
            let body = direct(Endpoint::QueryRecord, json!({"url": url, "formFactor": form_factor})).expect("a record");
            for metric in &HISTOGRAM_METRICS {
                let value = &body["record"]["metrics"][metric.name];
                let (p75, _) = check_histogram(metric, &value["histogram"], &value["percentiles"]["p75"], "density");
                let ceiling = match metric.name {
                    LCP => 5_300,
                    INP => 660,
                    CLS => 36,
                    FCP => 3_900,
                    _ => 2_400,
                };
                assert!(p75 <= ceiling, "{url} {form_factor} {}: {p75}", metric.name);
                p75s.insert((form_factor, metric.name), p75);
            }
        }
        for name in TIMINGS {
            comparisons += 1;
            let (phone, desktop) = (p75s[&("PHONE", name)], p75s[&("DESKTOP", name)]);
            assert!(desktop <= phone, "{url} {name}: desktop {desktop} > phone {phone}");
            desktop_faster += usize::from(desktop < phone);
            assert!((desktop..=phone).contains(&p75s[&("TABLET", name)]), "{url} {name}: tablet in between");
        }
    }
    assert!(desktop_faster * 10 >= comparisons * 9, "{desktop_faster} of {comparisons}");
}

#[tokio::test]
async fn no_field_data_is_404_for_the_url_and_in_the_host_for_its_origin_too() {
    let fake = FakeCrux::start(config());
    let client = reqwest::Client::new();
    for body in [
        json!({"url": "https://example.org/no-field-data/page", "formFactor": "PHONE"}),
        json!({"url": "https://no-field-data.example/page", "formFactor": "PHONE"}),
        json!({"origin": "https://no-field-data.example", "formFactor": "PHONE"}),
        json!({"origin": "https://no-field-data.example"}),
    ] {
        assert_eq!(record(&client, &fake, body.clone()).await, (404, not_found_body()), "{body}");
        assert_eq!(history(&client, &fake, body.clone()).await, (404, not_found_body()), "{body}");
    }
    // A marker in the path cannot reach the origin request, which carries only the origin.
    let (status, _) = record(&client, &fake, json!({"origin": "https://example.org", "formFactor": "PHONE"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn origin_only_is_404_for_the_url_and_a_record_for_its_origin() {
    let fake = FakeCrux::start(config());
    let client = reqwest::Client::new();
    let url = json!({"url": "https://example.net/origin-only/article", "formFactor": "DESKTOP"});
    let origin = json!({"origin": "https://example.net", "formFactor": "DESKTOP"});
    assert_eq!(record(&client, &fake, url.clone()).await, (404, not_found_body()));
    assert_eq!(history(&client, &fake, url).await, (404, not_found_body()));
    let (status, body) = record(&client, &fake, origin.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(body["record"]["key"], json!({"formFactor": "DESKTOP", "origin": "https://example.net"}));
    assert_eq!(history(&client, &fake, origin).await.0, 200);
}

#[tokio::test]
async fn no_inp_leaves_out_interaction_to_next_paint_only() {
    let fake = FakeCrux::start(config());
    let client = reqwest::Client::new();
    let body = json!({"url": "https://example.com/no-inp", "formFactor": "PHONE"});
    let (status, record_body) = record(&client, &fake, body.clone()).await;
    assert_eq!(status, 200);
    let metrics = &record_body["record"]["metrics"];
    assert!(metrics.get(INP).is_none());
    for name in [LCP, CLS, FCP, TTFB] {
        assert!(metrics.get(name).is_some(), "{name}");
    }
    let (status, history_body) = history(&client, &fake, body).await;
    assert_eq!(status, 200);
    assert!(history_body["record"]["metrics"].get(INP).is_none());
    assert!(history_body["record"]["metrics"].get(LCP).is_some());
}

#[tokio::test]
async fn slow_field_is_poor_in_every_form_factor_and_week() {
    let fake = FakeCrux::start(config());
    let client = reqwest::Client::new();
    for form_factor in ["PHONE", "DESKTOP", "TABLET", "ALL_FORM_FACTORS"] {
        let body = json!({"url": "https://example.com/slow-field/home", "formFactor": form_factor});
        let (status, answer) = record(&client, &fake, body.clone()).await;
        assert_eq!(status, 200);
        for metric in &HISTOGRAM_METRICS {
            let value = &answer["record"]["metrics"][metric.name];
            let (p75, _) = check_histogram(metric, &value["histogram"], &value["percentiles"]["p75"], "density");
            assert_eq!(metric.category(p75), 2, "{form_factor} {}: {p75} should be poor", metric.name);
        }
        let (_, answer) = history(&client, &fake, body).await;
        for metric in &HISTOGRAM_METRICS {
            for p75 in
                answer["record"]["metrics"][metric.name]["percentilesTimeseries"]["p75s"].as_array().expect("p75s")
            {
                assert_eq!(metric.category(units(metric, p75)), 2, "{form_factor} {}: {p75}", metric.name);
            }
        }
    }
}

#[tokio::test]
async fn origins_without_data_hide_the_origin_and_every_url_on_it() {
    let fake =
        FakeCrux::start(FakeCruxConfig { origins_without_data: vec!["http://127.0.0.1:8080/".into()], ..config() });
    let client = reqwest::Client::new();
    for body in [
        json!({"url": "http://127.0.0.1:8080/page"}),
        json!({"origin": "http://127.0.0.1:8080", "formFactor": "PHONE"}),
    ] {
        assert_eq!(record(&client, &fake, body).await, (404, not_found_body()));
    }
    assert_eq!(record(&client, &fake, json!({"url": "http://127.0.0.1:9090/page"})).await.0, 200);
    fake.add_origin_without_data("http://127.0.0.1:9090");
    assert_eq!(record(&client, &fake, json!({"url": "http://127.0.0.1:9090/page"})).await.0, 404);
    assert_eq!(history(&client, &fake, json!({"origin": "http://127.0.0.1:9090"})).await.0, 404);
}

#[tokio::test]
async fn metrics_filter_returns_only_the_metrics_asked_for() {
    let fake = FakeCrux::start(config());
    let client = reqwest::Client::new();
    let url = "https://example.com/filtered";
    let (_, full) = record(&client, &fake, json!({"url": url, "formFactor": "PHONE"})).await;
    let (status, some) =
        record(&client, &fake, json!({"url": url, "formFactor": "PHONE", "metrics": [LCP, CLS, "no_such_metric"]}))
            .await;
    assert_eq!(status, 200);
    assert_eq!(keys(&some["record"]["metrics"]), set(&[LCP, CLS]));
    assert_eq!(some["record"]["metrics"][LCP], full["record"]["metrics"][LCP]);
    let (_, some_history) = history(&client, &fake, json!({"url": url, "metrics": [INP]})).await;
    assert_eq!(keys(&some_history["record"]["metrics"]), set(&[INP]));

    for body in [
        json!({"url": url, "metrics": ["no_such_metric"]}),
        json!({"url": url, "formFactor": "PHONE", "metrics": [FORM_FACTORS]}),
        json!({"url": "https://example.com/no-inp", "metrics": [INP]}),
    ] {
        assert_eq!(record(&client, &fake, body.clone()).await, (404, not_found_body()), "{body}");
    }
    // An empty list asks for nothing in particular: everything.
    let (_, all) = record(&client, &fake, json!({"url": url, "formFactor": "PHONE", "metrics": []})).await;
    assert_eq!(all, full);
}

#[tokio::test]
async fn history_has_weekly_periods_oldest_first_ending_on_the_record() {
    let fake = FakeCrux::start(config());
    let client = reqwest::Client::new();
    let url = "https://example.com/history";
    let (status, body) = history(&client, &fake, json!({"url": url, "formFactor": "PHONE"})).await;
    assert_eq!(status, 200, "{body}");
    let (_, current) = record(&client, &fake, json!({"url": url, "formFactor": "PHONE"})).await;
    let record = &body["record"];
    assert_eq!(keys(record), set(&["key", "metrics", "collectionPeriods"]));
    assert_eq!(record["key"], json!({"formFactor": "PHONE", "url": url}));

    let periods = record["collectionPeriods"].as_array().expect("collectionPeriods");
    assert_eq!(periods.len(), 25);
    let day = |d: &Value| {
        days_from_civil(CruxDate {
            year: d["year"].as_i64().expect("year") as i32,
            month: d["month"].as_u64().expect("month") as u32,
            day: d["day"].as_u64().expect("day") as u32,
        })
    };
    for pair in periods.windows(2) {
        assert_eq!(day(&pair[1]["lastDate"]) - day(&pair[0]["lastDate"]), 7, "weekly, oldest first");
    }
    for period in periods {
        assert_eq!(day(&period["lastDate"]) - day(&period["firstDate"]), 27, "28 days");
    }
    assert_eq!(periods[24], current["record"]["collectionPeriod"]);
    assert_eq!(periods[0], json!({"firstDate": date(2026, 5, 17), "lastDate": date(2026, 6, 13)}));

    let metrics = &record["metrics"];
    for metric in &HISTOGRAM_METRICS {
        let value = &metrics[metric.name];
        assert_eq!(keys(value), set(&["histogramTimeseries", "percentilesTimeseries"]), "{}", metric.name);
        let series = &value["histogramTimeseries"];
        let p75s = value["percentilesTimeseries"]["p75s"].as_array().expect("p75s");
        assert_eq!(p75s.len(), 25);
        for week in 0..25 {
            let bins: Vec<Value> = series
                .as_array()
                .expect("bins")
                .iter()
                .map(|bin| {
                    let mut bin = bin.clone();
                    bin["density"] = bin["densities"][week].clone();
                    bin.as_object_mut().expect("bin").remove("densities");
                    bin
                })
                .collect();
            check_histogram(metric, &Value::Array(bins), &p75s[week], "density");
        }
        // The newest week is the record.
        assert_eq!(p75s[24], current["record"]["metrics"][metric.name]["percentiles"]["p75"], "{}", metric.name);
        for bin in 0..3 {
            assert_eq!(
                series[bin]["densities"][24], current["record"]["metrics"][metric.name]["histogram"][bin]["density"],
                "{}",
                metric.name
            );
        }
        assert!(
            p75s.iter().map(Value::to_string).collect::<BTreeSet<_>>().len() > 1,
            "{}: the series moves",
            metric.name
        );
    }
    for kind in keys(&current["record"]["metrics"][NAVIGATION_TYPES]["fractions"]) {
        let fractions = &metrics[NAVIGATION_TYPES]["fractionTimeseries"][&kind]["fractions"];
        assert_eq!(fractions.as_array().map(Vec::len), Some(25), "{kind}");
        assert_eq!(fractions[24], current["record"]["metrics"][NAVIGATION_TYPES]["fractions"][&kind]);
    }
    assert_eq!(metrics[LCP_IMAGE_TTFB]["percentilesTimeseries"]["p75s"].as_array().map(Vec::len), Some(25));

    // Fewer weeks are the newest of the longer series; the count may be a decimal string.
    let (_, short) =
        history(&client, &fake, json!({"url": url, "formFactor": "PHONE", "collectionPeriodCount": "3"})).await;
    assert_eq!(short["record"]["collectionPeriods"].as_array().map(|p| p.to_vec()), Some(periods[22..].to_vec()));
    let lcp =
        |b: &Value| b["record"]["metrics"][LCP]["percentilesTimeseries"]["p75s"].as_array().expect("p75s").clone();
    assert_eq!(lcp(&short), lcp(&body)[22..].to_vec());
    for count in [1, 40] {
        let (status, long) = history(&client, &fake, json!({"url": url, "collection_period_count": count})).await;
        assert_eq!(status, 200);
        assert_eq!(long["record"]["collectionPeriods"].as_array().map(Vec::len), Some(count));
        let form_factors = &long["record"]["metrics"][FORM_FACTORS]["fractionTimeseries"]["phone"]["fractions"];
        assert_eq!(form_factors.as_array().map(Vec::len), Some(count));
    }
}

#[tokio::test]
async fn sparse_history_has_nulls_in_early_weeks() {
    let fake = FakeCrux::start(config());
    let client = reqwest::Client::new();
    let url = "https://example.com/sparse-history";
    let (status, body) = history(&client, &fake, json!({"url": url, "formFactor": "DESKTOP"})).await;
    assert_eq!(status, 200);
    let metrics = &body["record"]["metrics"];
    let missing = 25 - 1 - SPARSE_RECENT_WEEKS as usize;
    for metric in &HISTOGRAM_METRICS {
        let p75s = metrics[metric.name]["percentilesTimeseries"]["p75s"].as_array().expect("p75s");
        assert!(p75s[..missing].iter().all(Value::is_null), "{}: {p75s:?}", metric.name);
        assert!(p75s[missing..].iter().all(|p| !p.is_null()), "{}: {p75s:?}", metric.name);
        for bin in metrics[metric.name]["histogramTimeseries"].as_array().expect("bins") {
            let densities = bin["densities"].as_array().expect("densities");
            assert!(densities[..missing].iter().all(|d| d == "NaN"), "{densities:?}");
            assert!(densities[missing..].iter().all(Value::is_f64), "{densities:?}");
        }
    }
    let navigate = &metrics[NAVIGATION_TYPES]["fractionTimeseries"]["navigate"]["fractions"];
    assert_eq!(navigate[0], "NaN");
    assert!(navigate[24].is_f64());
    assert_eq!(metrics[LCP_IMAGE_TTFB]["percentilesTimeseries"]["p75s"][0], Value::Null);
    // Recent weeks only: nothing missing.
    let (_, recent) =
        history(&client, &fake, json!({"url": url, "formFactor": "DESKTOP", "collectionPeriodCount": 11})).await;
    assert!(
        recent["record"]["metrics"][LCP]["percentilesTimeseries"]["p75s"]
            .as_array()
            .expect("p75s")
            .iter()
            .all(|p| !p.is_null())
    );
    assert_eq!(record(&client, &fake, json!({"url": url, "formFactor": "DESKTOP"})).await.0, 200);
}

#[tokio::test]
async fn invalid_bodies_get_googles_400() {
    let fake = FakeCrux::start(config());
    let client = reqwest::Client::new();
    let form_factor_message =
        "Invalid value at 'form_factor' (type.googleapis.com/google.chrome.uxreport.v1.FormFactor), \"MOBILE\"";
    let (status, body) = record(&client, &fake, json!({"url": "https://example.com/", "formFactor": "MOBILE"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": {
            "code": 400,
            "message": form_factor_message,
            "status": "INVALID_ARGUMENT",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "form_factor", "description": form_factor_message}],
            }],
        }})
    );

    let record_url = format!("{}?key={KEY}", fake.record_endpoint());
    let history_url = format!("{}?key={KEY}", fake.history_endpoint());
    let cases: Vec<(&String, String, &str)> = vec![
        (
            &record_url,
            json!({"url": "https://a.example/", "origin": "https://a.example"}).to_string(),
            "Exactly one of url or origin must be set, not both.",
        ),
        (&record_url, json!({"formFactor": "PHONE"}).to_string(), "Exactly one of url or origin must be set."),
        (&history_url, String::new(), "Exactly one of url or origin must be set."),
        (&record_url, json!({"url": ""}).to_string(), "Exactly one of url or origin must be set."),
        (
            &history_url,
            json!({"url": "https://a.example/", "collectionPeriodCount": 0}).to_string(),
            "collection_period_count must be between 1 and 40, got 0.",
        ),
        (
            &history_url,
            json!({"url": "https://a.example/", "collectionPeriodCount": 41}).to_string(),
            "collection_period_count must be between 1 and 40, got 41.",
        ),
        (
            &history_url,
            json!({"url": "https://a.example/", "collectionPeriodCount": "many"}).to_string(),
            "Invalid value at 'collection_period_count' (TYPE_INT32), \"many\"",
        ),
        (
            &record_url,
            json!({"url": "https://a.example/", "collectionPeriodCount": 5}).to_string(),
            "Invalid JSON payload received. Unknown name \"collectionPeriodCount\": Cannot find field.",
        ),
        (
            &record_url,
            json!({"url": "https://a.example/", "foo": 1}).to_string(),
            "Invalid JSON payload received. Unknown name \"foo\": Cannot find field.",
        ),
        (&record_url, "url=https://a.example/".into(), "Invalid JSON payload received. Unexpected token."),
        (&record_url, "[]".into(), "Invalid JSON payload received. Unknown name \"\": Root element must be a message."),
        (&record_url, json!({"url": 42}).to_string(), "Invalid value at 'url' (TYPE_STRING), 42"),
        (&record_url, json!({"url": "ftp://a.example/"}).to_string(), "Invalid url: \"ftp://a.example/\""),
        (&record_url, json!({"url": "a.example/page"}).to_string(), "Invalid url: \"a.example/page\""),
        (
            &record_url,
            json!({"origin": "https://a.example/page"}).to_string(),
            "Invalid origin: \"https://a.example/page\"",
        ),
        (
            &record_url,
            json!({"url": "https://a.example/", "metrics": "largest_contentful_paint"}).to_string(),
            "Invalid value at 'metrics' (TYPE_STRING), \"largest_contentful_paint\"",
        ),
        (
            &record_url,
            json!({"url": "https://a.example/", "formFactor": "phone"}).to_string(),
            "Invalid value at 'form_factor' (type.googleapis.com/google.chrome.uxreport.v1.FormFactor), \"phone\"",
        ),
    ];
    for (endpoint, body, message) in &cases {
        let (status, answer) = post_raw(&client, endpoint, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], 400, "{body}");
        assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT", "{body}");
        assert_eq!(answer["error"]["message"], *message, "{body}");
        assert_eq!(answer["error"]["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest", "{body}");
        assert_eq!(answer["error"]["details"][0]["fieldViolations"][0]["description"], *message, "{body}");
    }
    let stats = fake.stats();
    let n = cases.len() as u64 + 1;
    assert_eq!(
        (stats.status(400), stats.rejected_key, stats.accepted),
        (n, 0, n),
        "bad bodies count against the quota"
    );
    assert!(stats.queries.is_empty(), "{:?}", stats.queries);
}

#[tokio::test]
async fn bad_key_is_rejected_and_does_not_use_quota() {
    let fake = FakeCrux::start(FakeCruxConfig { quota: Some(CruxQuota::per_minute(1)), ..config() });
    let client = reqwest::Client::new();
    let body = json!({"url": "https://example.com/"}).to_string();
    let expected = json!({"error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "chromeuxreport.googleapis.com"},
        }],
    }});
    let wrong = format!("{}?key=wrong", fake.record_endpoint());
    assert_eq!(post_raw(&client, &wrong, body.clone()).await, (400, expected.clone()));
    assert_eq!(post_raw(&client, &fake.history_endpoint(), body.clone()).await, (400, expected));

    // The key may come in Google's header instead of the query.
    let response = client
        .post(fake.record_endpoint())
        .header("X-Goog-Api-Key", KEY)
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200, "the bad-key requests must not have used the quota of 1");
    response.bytes().await.expect("body");
    let (status, _) = post_raw(&client, &format!("{}?key={KEY}", fake.record_endpoint()), body).await;
    assert_eq!(status, 429);

    let stats = fake.stats();
    assert_eq!((stats.requests, stats.rejected_key, stats.accepted), (4, 2, 1));
    assert_eq!(stats.by_status, BTreeMap::from([(200, 1), (400, 2), (429, 1)]));
    // A server without a key accepts any key, or none.
    let open = FakeCrux::start(FakeCruxConfig::new());
    assert_eq!(
        post_raw(&client, &open.record_endpoint(), json!({"origin": "https://a.example"}).to_string()).await.0,
        200
    );
}

/// Sleeps until just after the next fixed window of `window` begins.
async fn sleep_into_next_window(fake: &FakeCrux, window: Duration) {
    let elapsed = fake.started_at().elapsed();
    let next = Duration::from_nanos((window.as_nanos() * (window_index(elapsed, window) + 1)) as u64);
    tokio::time::sleep(next - elapsed + Duration::from_millis(30)).await;
}

fn quota_body(limit: u32) -> Value {
    json!({"error": {
        "code": 429,
        "message": "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service \
                    'chromeuxreport.googleapis.com' for consumer 'project_number:000000000000'.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com",
            "metadata": {
                "quota_metric": "chromeuxreport.googleapis.com/queries",
                "quota_limit": "queriesPerMinutePerProject",
                "service": "chromeuxreport.googleapis.com",
                "consumer": "projects/000000000000",
                "quota_limit_value": limit.to_string(),
            },
        }],
    }})
}

#[tokio::test]
async fn quota_is_shared_by_both_endpoints_answers_429_and_recovers_next_window() {
    // Three a minute, run 30 times faster: three per 2 s.
    let quota = CruxQuota::per_minute(3).time_scaled(30);
    assert_eq!(quota.window, Duration::from_secs(2));
    let fake = FakeCrux::start(FakeCruxConfig { quota: Some(quota), ..config() });
    let client = reqwest::Client::new();
    let page = json!({"url": "https://example.com/", "formFactor": "PHONE"});
    let mut statuses = Vec::new();
    let mut rejections = Vec::new();
    for endpoint in [
        Endpoint::QueryRecord,
        Endpoint::QueryHistoryRecord,
        Endpoint::QueryRecord,
        Endpoint::QueryHistoryRecord,
        Endpoint::QueryRecord,
    ] {
        let (status, body) = post(&client, &fake, endpoint, &page).await;
        statuses.push(status);
        if status == 429 {
            rejections.push(body);
        }
    }
    let stamps = fake.accepted_timestamps();
    assert!(stamps.iter().all(|t| *t < quota.window), "precondition: one window, got {stamps:?}");
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert_eq!(rejections, [quota_body(3), quota_body(3)]);
    let stats = fake.stats();
    assert_eq!((stats.accepted, stats.status(200), stats.status(429), stats.max_in_window), (3, 3, 2, 3));

    sleep_into_next_window(&fake, quota.window).await;
    assert_eq!(history(&client, &fake, page.clone()).await.0, 200);
    assert_eq!(record(&client, &fake, page).await.0, 200);
    let stats = fake.stats();
    assert_eq!((stats.accepted, stats.max_in_window), (5, 3));
    assert_eq!(fake.accepted_timestamps().len(), 5);
}

#[tokio::test]
async fn sliding_quota_admits_again_once_the_oldest_request_ages_out() {
    let quota = CruxQuota { limit: 2, window: Duration::from_secs(1), kind: WindowKind::Sliding };
    assert_eq!(CruxQuota::per_minute(2).time_scaled(60).sliding(), quota);
    let fake = FakeCrux::start(FakeCruxConfig { quota: Some(quota), ..config() });
    let client = reqwest::Client::new();
    let page = json!({"origin": "https://example.com"});
    assert_eq!(record(&client, &fake, page.clone()).await.0, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(history(&client, &fake, page.clone()).await.0, 200);
    assert_eq!(record(&client, &fake, page.clone()).await, (429, quota_body(2)));

    // Once the first ages out there is room for one, not two: the second is still inside.
    let first = fake.accepted_timestamps()[0];
    let wait = (first + quota.window + Duration::from_millis(30)).saturating_sub(fake.started_at().elapsed());
    tokio::time::sleep(wait).await;
    assert_eq!(record(&client, &fake, page.clone()).await.0, 200);
    let stamps = fake.accepted_timestamps();
    assert!(stamps[2] - stamps[1] < quota.window, "precondition: the second is still inside, {stamps:?}");
    assert_eq!(record(&client, &fake, page).await.0, 429);
    assert_eq!(fake.stats().max_in_window, 2);
}

#[test]
fn the_default_quota_is_googles() {
    let quota = FakeCruxConfig::new().quota.expect("a quota by default");
    assert_eq!(quota, CruxQuota { limit: 150, window: Duration::from_secs(60), kind: WindowKind::Fixed });
    assert_eq!(quota, CruxQuota::default());
    assert_eq!(quota.time_scaled(60).window, Duration::from_secs(1));
    assert_eq!(quota.time_scaled(0), quota, "a zero factor is taken as 1");
}

#[tokio::test]
async fn latency_and_slow_marker_delay_lookups_not_errors() {
    let latency = Duration::from_millis(300);
    let fake =
        FakeCrux::start(FakeCruxConfig { latency, jitter: Duration::from_millis(50), seed: Some(7), ..config() });
    let client = reqwest::Client::new();
    for (body, status, at_least) in [
        (json!({"url": "https://example.com/"}), 200, latency),
        (json!({"url": "https://example.com/no-field-data"}), 404, latency),
        (json!({"url": "https://example.com/crux-slow-250"}), 200, latency + Duration::from_millis(250)),
    ] {
        let started = Instant::now();
        assert_eq!(record(&client, &fake, body.clone()).await.0, status, "{body}");
        assert!(started.elapsed() >= at_least, "{body}: {:?}", started.elapsed());
    }
    let started = Instant::now();
    assert_eq!(record(&client, &fake, json!({"url": "https://example.com/", "formFactor": "SMARTWATCH"})).await.0, 400);
    assert!(started.elapsed() < latency, "errors are answered at once: {:?}", started.elapsed());
}

#[test]
fn jitter_is_reproducible_for_a_seed() {
    let addr: SocketAddr = ([127, 0, 0, 1], 1).into();
    let samples = |seed| {
        let shared =
            Shared::new(FakeCruxConfig { jitter: Duration::from_millis(100), seed: Some(seed), ..config() }, addr);
        (0..8).map(|_| shared.jitter_sample()).collect::<Vec<_>>()
    };
    assert_eq!(samples(7), samples(7));
    assert_ne!(samples(7), samples(8));
    assert!(samples(7).iter().all(|d| *d < Duration::from_millis(100)));
    assert!(samples(7).iter().collect::<BTreeSet<_>>().len() > 1);
}

#[tokio::test]
async fn crux_server_error_marker_answers_500() {
    let fake = FakeCrux::start(config());
    let client = reqwest::Client::new();
    let (status, body) = record(&client, &fake, json!({"origin": "https://crux-server-error.example"})).await;
    assert_eq!(status, 500);
    assert_eq!(body, json!({"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}));
    assert_eq!((fake.stats().status(500), fake.stats().accepted), (1, 1));
}

#[tokio::test]
async fn stats_count_endpoints_identifiers_form_factors_statuses_and_reset() {
    let fake = FakeCrux::start(config());
    let client = reqwest::Client::new();
    let page = "https://example.com/page";
    let gone = "https://example.com/origin-only/x";
    let origin = "https://example.com";
    let calls = [
        (Endpoint::QueryRecord, json!({"url": page, "formFactor": "PHONE"}), 200),
        (Endpoint::QueryRecord, json!({"url": page, "formFactor": "PHONE"}), 200),
        (Endpoint::QueryRecord, json!({"url": page, "formFactor": "DESKTOP"}), 200),
        (Endpoint::QueryRecord, json!({"url": gone, "formFactor": "PHONE"}), 404),
        (Endpoint::QueryRecord, json!({"origin": origin, "formFactor": "PHONE"}), 200),
        (Endpoint::QueryHistoryRecord, json!({"url": page}), 200),
        (Endpoint::QueryHistoryRecord, json!({"url": page, "formFactor": "ALL_FORM_FACTORS"}), 200),
        (Endpoint::QueryRecord, json!({"url": page, "origin": origin}), 400),
    ];
    for (endpoint, body, status) in &calls {
        assert_eq!(post(&client, &fake, *endpoint, body).await.0, *status, "{body}");
    }
    let (status, _) =
        post_raw(&client, &format!("{}?key=nope", fake.record_endpoint()), json!({"url": page}).to_string()).await;
    assert_eq!(status, 400);

    let url = |u: &str| Identifier::Url(u.into());
    let query = |endpoint, identifier, form_factor| Query { endpoint, identifier, form_factor };
    let expected = FakeCruxStats {
        requests: 9,
        by_endpoint: BTreeMap::from([(Endpoint::QueryRecord, 7), (Endpoint::QueryHistoryRecord, 2)]),
        by_status: BTreeMap::from([(200, 6), (404, 1), (400, 2)]),
        rejected_key: 1,
        accepted: 8,
        max_in_window: 8,
        max_concurrent: 1,
        queries: BTreeMap::from([
            (query(Endpoint::QueryRecord, url(page), Some(FormFactor::Phone)), 2),
            (query(Endpoint::QueryRecord, url(page), Some(FormFactor::Desktop)), 1),
            (query(Endpoint::QueryRecord, url(page), None), 1),
            (query(Endpoint::QueryRecord, url(gone), Some(FormFactor::Phone)), 1),
            (query(Endpoint::QueryRecord, Identifier::Origin(origin.into()), Some(FormFactor::Phone)), 1),
            (query(Endpoint::QueryHistoryRecord, url(page), None), 2),
        ]),
    };
    let stats = fake.stats();
    assert_eq!(stats, expected);
    assert_eq!(stats.for_url(page), 6);
    assert_eq!(stats.for_origin(origin), 1);
    assert_eq!(stats.count(Endpoint::QueryRecord, &url(page), Some(FormFactor::Phone)), 2);
    assert_eq!(stats.count(Endpoint::QueryHistoryRecord, &url(page), Some(FormFactor::Phone)), 0);
    assert_eq!((stats.endpoint(Endpoint::QueryHistoryRecord), stats.status(404), stats.status(429)), (2, 1, 0));
    assert_eq!(stats.by_status.values().sum::<u64>(), stats.requests);

    fake.reset_stats();
    assert_eq!(fake.stats(), FakeCruxStats::default());
    assert!(fake.accepted_timestamps().is_empty());
    assert_eq!(record(&client, &fake, json!({"origin": origin})).await.0, 200);
    assert_eq!((fake.stats().accepted, fake.stats().max_in_window), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_counts_requests_in_flight() {
    let latency = Duration::from_millis(500);
    let fake = FakeCrux::start(FakeCruxConfig { latency, ..config() });
    let client = reqwest::Client::new();
    let url = format!("{}?key={KEY}", fake.record_endpoint());
    let requests: Vec<_> = (0..4)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let body = json!({"url": format!("https://example.com/{i}")}).to_string();
                client.post(url).body(body).send().await.map(|r| r.status().as_u16())
            })
        })
        .collect();
    for handle in requests {
        assert_eq!(handle.await.expect("join").expect("send"), 200);
    }
    assert_eq!(fake.stats().max_concurrent, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_new_connections_is_served() {
    let fake = FakeCrux::start(unlimited());
    let url = format!("{}?key={KEY}", fake.record_endpoint());
    // One client per request: every request opens its own connection at the same moment.
    let requests: Vec<_> = (0..200)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let body = json!({"url": format!("https://burst.example/{i}")}).to_string();
                reqwest::Client::new().post(url).body(body).send().await.map(|r| r.status().as_u16())
            })
        })
        .collect();
    for handle in requests {
        assert_eq!(handle.await.expect("join").expect("send"), 200);
    }
    assert_eq!(fake.stats().status(200), 200);
}

#[tokio::test]
async fn dropping_the_fake_stops_the_server() {
    let fake = FakeCrux::start(config());
    let addr = fake.addr();
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    drop(fake);
    assert!(crate::google_fake::stops_accepting(addr).await, "server still accepting on {addr} after drop");
}

#[tokio::test]
async fn try_start_reports_a_zero_window() {
    let zero = CruxQuota { limit: 1, window: Duration::ZERO, kind: WindowKind::Fixed };
    let started = FakeCrux::try_start(FakeCruxConfig { quota: Some(zero), ..config() });
    assert_eq!(started.map(|_| ()).map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput));
}

#[test]
fn try_start_needs_a_runtime() {
    assert!(FakeCrux::try_start(config()).is_err());
}

#[test]
fn dates_step_across_months_years_and_leap_days() {
    let d = |year, month, day| CruxDate { year, month, day };
    assert_eq!(days_from_civil(d(1970, 1, 1)), 0);
    assert_eq!(days_from_civil(d(2000, 3, 1)) - days_from_civil(d(2000, 2, 28)), 2);
    assert_eq!(d(2026, 11, 28).plus_days(-27), d(2026, 11, 1));
    assert_eq!(d(2027, 1, 3).plus_days(-7), d(2026, 12, 27));
    assert_eq!(d(2024, 3, 1).plus_days(-1), d(2024, 2, 29));
    assert_eq!(d(2100, 3, 1).plus_days(-1), d(2100, 2, 28));
    for days in [-800_000, -1, 0, 1, 20_000, 59, 60, 800_000] {
        assert_eq!(days_from_civil(civil_from_days(days)), days);
    }
}

#[test]
fn urls_and_origins_normalize_and_markers_parse() {
    for (raw, normalized) in [
        ("https://example.com", Some("https://example.com/")),
        ("HTTP://EXAMPLE.com:8080/A?b=c#d", Some("http://example.com:8080/A")),
        ("https://example.com/?utm_source=x", Some("https://example.com/")),
        ("https://example.com#top", Some("https://example.com/")),
        ("https://example.com:443/a", Some("https://example.com/a")),
        ("http://example.com:443/a", Some("http://example.com:443/a")),
        ("http://[::1]:8080/a", Some("http://[::1]:8080/a")),
        ("ftp://example.com/", None),
        ("example.com/x", None),
        ("https:///path", None),
        ("https://user@example.com/", None),
        ("https://a b.example/", None),
    ] {
        assert_eq!(normalize_url(raw).as_deref(), normalized, "{raw}");
    }
    assert_eq!(normalize_origin("https://Example.com/").as_deref(), Some("https://example.com"));
    assert_eq!(normalize_origin("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(normalize_origin("http://Example.com:80/").as_deref(), Some("http://example.com"));
    assert_eq!(normalize_origin("https://example.com/x"), None);
    assert_eq!(normalize_origin("https://example.com?x"), None);
    assert_eq!(origin_of("https://example.com:8443/a/b"), "https://example.com:8443");
    assert_eq!(marker_number("https://x/crux-slow-250/p", SLOW_MS), Some(250));
    assert_eq!(marker_number("https://x/crux-slow-/crux-slow-9", SLOW_MS), Some(9));
    assert_eq!(marker_number("https://x/slow-250", SLOW_MS), None);
    assert_eq!(query_param("a=1&key=k%2By&key=second", "key").as_deref(), Some("k+y"));
    assert_eq!(query_param("a=1", "key"), None);
}
