//! Label handling and whole-scrape failure rules, cases from Prometheus's `scrape_test.go`
//! (`TestScrapeLoopAppend*`, `TestScrapeLoopLabelLimit`, `TestMutateSampleLabels`).

use promshard_model::config::Config;
use promshard_proto::STALE_NAN_BITS;
use std::sync::Arc;

use super::*;

fn processor(extra: &str) -> SampleProcessor {
    let yaml = format!("scrape_configs:\n  - job_name: j\n{extra}");
    let cfg = Config::parse(&yaml).unwrap().scrape_configs[0].clone();
    let target = Labels::from_pairs([("instance", "i:9"), ("job", "j"), ("team", "t")]);
    SampleProcessor::new(&cfg, target)
}

/// A new writer generation per call: every sample then carries its series, for the tests
/// to read (the steady state, where they do not, is tested on its own).
fn fresh() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn run(p: &mut SampleProcessor, body: &str) -> Result<Processed, Failed> {
    p.process(body.as_bytes(), Format::Text, 1_000, fresh())
}

fn series_of(s: &AppendSample) -> &Arc<Series> {
    s.series.as_ref().expect("sample carries its series")
}

fn series(p: &Processed) -> Vec<String> {
    let mut v: Vec<String> = p.samples.iter().map(|s| series_of(s).to_string()).collect();
    v.sort();
    v
}

fn one(p: &mut SampleProcessor, body: &str) -> String {
    let out = run(p, body).unwrap();
    assert_eq!(out.samples.len(), 1, "{:?}", series(&out));
    series_of(&out.samples[0]).to_string()
}

#[test]
fn honor_labels_false_prefixes_conflicts_with_exported() {
    let mut p = processor("");
    assert_eq!(
        one(&mut p, "m{job=\"x\",instance=\"y\",a=\"1\"} 1\n"),
        r#"{__name__="m", a="1", exported_instance="y", exported_job="x", instance="i:9", job="j", team="t"}"#
    );
    // exported_instance is taken by the exposition: the conflict moves one prefix further.
    assert_eq!(
        one(&mut p, "m{instance=\"y\",exported_instance=\"z\"} 1\n"),
        r#"{__name__="m", exported_exported_instance="y", exported_instance="z", instance="i:9", job="j", team="t"}"#
    );
    // An empty exposed value is no conflict (unset, as in Prometheus).
    assert_eq!(
        one(&mut p, "m{team=\"\"} 1\n"),
        r#"{__name__="m", instance="i:9", job="j", team="t"}"#
    );
}

#[test]
fn honor_labels_true_keeps_exposed_values() {
    let mut p = processor("    honor_labels: true\n");
    assert_eq!(
        one(&mut p, "m{job=\"x\",team=\"u\"} 1\n"),
        r#"{__name__="m", instance="i:9", job="x", team="u"}"#
    );
}

#[test]
fn utf8_names_are_kept_unless_the_job_says_legacy() {
    let body = "{\"my.metric\",\"k8s.pod\"=\"p\"} 1\nok 2\n";
    // Prometheus 3's default: UTF-8 names, and metric relabeling may write them too.
    let mut p = processor(
        "    metric_relabel_configs: [{source_labels: [__name__], regex: ok, target_label: service.name, replacement: x}]\n",
    );
    assert_eq!(
        series(&run(&mut p, body).unwrap()),
        [
            r#"{__name__="my.metric", instance="i:9", job="j", k8s.pod="p", team="t"}"#,
            r#"{__name__="ok", instance="i:9", job="j", service.name="x", team="t"}"#,
        ]
    );
    // legacy: the whole scrape fails, with Prometheus's message.
    let e = run(
        &mut processor("    metric_name_validation_scheme: legacy\n"),
        body,
    )
    .err()
    .unwrap()
    .error;
    assert!(e.starts_with("invalid metric name or label names: "), "{e}");
    let e = run(
        &mut processor("    metric_name_validation_scheme: legacy\n"),
        "m{\"a-b\"=\"1\"} 1\n",
    )
    .err()
    .unwrap()
    .error;
    assert!(e.contains("a-b"), "{e}");
}

#[test]
fn label_limits_fail_the_whole_scrape() {
    // Target labels count: 3 target labels + __name__ + 1 exposed = 5.
    let body = "m{a=\"1\"} 1\nm{a=\"2\"} 2\n";
    assert_eq!(
        run(&mut processor("    label_limit: 5\n"), body)
            .unwrap()
            .samples
            .len(),
        2
    );
    let e = run(&mut processor("    label_limit: 4\n"), body)
        .err()
        .unwrap()
        .error;
    assert!(e.contains("label_limit exceeded"), "{e}");

    let body = "m{abcde=\"1\"} 1\n";
    assert!(run(&mut processor("    label_name_length_limit: 8\n"), body).is_ok());
    let e = run(&mut processor("    label_name_length_limit: 4\n"), body)
        .err()
        .unwrap()
        .error;
    assert!(e.contains("label_name_length_limit exceeded"), "{e}");

    let body = "m{a=\"12345\"} 1\n";
    assert!(run(&mut processor("    label_value_length_limit: 5\n"), body).is_ok());
    let e = run(&mut processor("    label_value_length_limit: 4\n"), body)
        .err()
        .unwrap()
        .error;
    assert!(e.contains("label_value_length_limit exceeded"), "{e}");
}

#[test]
fn sample_limit_counts_after_metric_relabeling_and_fails_the_scrape() {
    let body = "a 1\nb 2\nc 3\n";
    let mut p = processor("    sample_limit: 2\n");
    let f = run(&mut p, body).err().unwrap();
    assert!(f.error.contains("sample limit exceeded"), "{}", f.error);
    // Reported as Prometheus does: parsing went on to count every sample.
    assert_eq!((f.scraped, f.post_relabel, f.series_added), (3, 3, 2));
    // Dropped series do not count.
    let mut p = processor(
        "    sample_limit: 2\n    metric_relabel_configs: [{source_labels: [__name__], regex: c, action: drop}]\n",
    );
    let out = run(&mut p, body).unwrap();
    assert_eq!((out.scraped, out.post_relabel), (3, 2));
}

#[test]
fn duplicate_label_names_fail_the_scrape() {
    let mut p = processor("");
    let f = run(&mut p, "ok 1\nm{a=\"1\",a=\"2\"} 1\n").err().unwrap();
    assert!(f.error.contains("not unique"), "{}", f.error);
    // The counts up to the failure are still reported, as in Prometheus.
    assert_eq!((f.scraped, f.post_relabel, f.series_added), (2, 1, 1));
}

#[test]
fn series_added_counts_new_series_text_including_timestamped_ones() {
    let mut p = processor("");
    let out = run(&mut p, "a 1\nb 2 1000\n").unwrap();
    assert_eq!(out.series_added, 2);
    assert_eq!(
        out.tracked, 1,
        "timestamped series are not tracked for staleness"
    );
    let out = run(&mut p, "a 1\nb 2 1000\nc 3\n").unwrap();
    assert_eq!(out.series_added, 1);
    // Steady state: the cache serves every series, nothing is new.
    let out = run(&mut p, "a 1\nb 2 1000\nc 3\n").unwrap();
    assert_eq!(out.series_added, 0);
}

#[test]
fn explicit_timestamps_honored_ignored_or_tracked() {
    let body = "a 1 5000\nb 2\n";
    let ts_of = |out: &Processed, name: &str| {
        out.samples
            .iter()
            .find(|s| series_of(s).get("__name__") == Some(name))
            .map(|s| s.timestamp_ms)
    };
    let out = run(&mut processor(""), body).unwrap();
    assert_eq!(
        (ts_of(&out, "a"), ts_of(&out, "b")),
        (Some(5000), Some(1000))
    );
    assert_eq!(out.tracked, 1, "explicit timestamps get no stale markers");

    let out = run(&mut processor("    honor_timestamps: false\n"), body).unwrap();
    assert_eq!(
        ts_of(&out, "a"),
        Some(1000),
        "scrape time replaces the exposed one"
    );
    assert_eq!(out.tracked, 2);

    let out = run(
        &mut processor("    track_timestamps_staleness: true\n"),
        body,
    )
    .unwrap();
    assert_eq!(ts_of(&out, "a"), Some(5000));
    assert_eq!(
        out.tracked, 2,
        "tracked for staleness despite the timestamp"
    );
}

fn names(samples: &[AppendSample]) -> Vec<String> {
    let mut v: Vec<String> = samples
        .iter()
        .map(|s| series_of(s).get("__name__").unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn vanished_series_get_stale_markers_once_and_their_ids_retire() {
    let mut p = processor("");
    let first = run(&mut p, "a 1\nb 2\nc 3 5000\n").unwrap();
    assert!(first.stale.is_empty() && first.retired.is_empty());
    let b_id = first.samples[1].id;
    let c_id = first.samples[2].id;
    let out = run(&mut p, "a 1\n").unwrap();
    // b was tracked: a marker at the scrape's time; c had its own timestamp: none.
    assert_eq!(names(&out.stale), ["b"]);
    assert!(out.stale[0].value.to_bits() == STALE_NAN_BITS);
    assert_eq!(out.stale[0].timestamp_ms, 1_000);
    let mut retired = out.retired.clone();
    retired.sort();
    assert_eq!(retired, [b_id.min(c_id), b_id.max(c_id)]);
    // Steady: the same series object every scrape, no markers.
    let again = run(&mut p, "a 7\n").unwrap();
    assert!(again.stale.is_empty());
    assert!(Arc::ptr_eq(
        series_of(&again.samples[0]),
        series_of(&out.samples[0])
    ));
    // b comes back as a new series (new id).
    let back = run(&mut p, "a 1\nb 2\n").unwrap();
    assert_ne!(back.samples[1].id, b_id);
}

#[test]
fn a_scrape_failing_midway_marks_every_previously_tracked_series_stale() {
    let mut p = processor("");
    run(&mut p, "a 1\nb 2\nc 3\n").unwrap();
    // a and b are read again before the parse error: they still go stale with the rest.
    assert!(run(&mut p, "a 1\nb 2\nc{ 3\n").is_err());
    assert_eq!(names(&p.fail(2_000, fresh())), ["a", "b", "c"]);
    // Nothing is tracked after a failure: the next success marks nothing.
    let out = run(&mut p, "a 1\n").unwrap();
    assert!(out.stale.is_empty());
    assert!(p.fail(3_000, fresh()).len() == 1, "a is tracked again");
}

#[test]
fn series_text_relabeled_to_one_label_set_is_one_series_and_a_duplicate() {
    let mut p = processor("    metric_relabel_configs: [{regex: x, action: labeldrop}]\n");
    let out = run(&mut p, "m{x=\"1\"} 1\nm{x=\"2\"} 2\n").unwrap();
    assert_eq!(
        out.samples.len(),
        1,
        "the second is a duplicate of the first"
    );
    assert_eq!(out.samples[0].value, 1.0);
    let again = run(&mut p, "m{x=\"2\"} 3\n").unwrap();
    assert!(again.stale.is_empty() && again.retired.is_empty());
    assert!(Arc::ptr_eq(
        series_of(&again.samples[0]),
        series_of(&out.samples[0])
    ));
}

#[test]
fn end_of_run_marks_tracked_series_and_retire_all_returns_every_id() {
    let mut p = processor("");
    let out = run(&mut p, "a 1\nb 2 5000\n").unwrap();
    assert_eq!(names(&p.end_of_run(9_000, fresh())), ["a"]);
    let mut ids = p.retire_all();
    ids.sort();
    let mut want: Vec<u64> = out.samples.iter().map(|s| s.id).collect();
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn steady_scrapes_send_labels_once_per_generation_and_again_after_a_failure() {
    let mut p = processor("");
    let body = "a 1\nb 2\n";
    let carried = |out: &Processed| out.samples.iter().filter(|s| s.series.is_some()).count();
    let out = p.process(body.as_bytes(), Format::Text, 1_000, 7).unwrap();
    assert_eq!(carried(&out), 2, "new series carry their labels");
    let out = p.process(body.as_bytes(), Format::Text, 2_000, 7).unwrap();
    assert_eq!(carried(&out), 0, "announced under this generation already");
    // Reordered body, new series in between: found through the index, the new one carries.
    let out = p
        .process("c 3\nb 2\na 1\n".as_bytes(), Format::Text, 3_000, 7)
        .unwrap();
    assert_eq!(carried(&out), 1);
    assert_eq!(out.series_added, 1);
    // A failed scrape writes nothing: what it announced is announced again next time.
    assert!(
        p.process("d 4\na{ 1\n".as_bytes(), Format::Text, 4_000, 7)
            .is_err()
    );
    let out = p
        .process("d 4\n".as_bytes(), Format::Text, 5_000, 7)
        .unwrap();
    assert_eq!(carried(&out), 1, "d was never written");
    // A new generation (endpoints changed) carries everything once more.
    let out = p
        .process("d 4\n".as_bytes(), Format::Text, 6_000, 8)
        .unwrap();
    assert_eq!(carried(&out), 1);
    // Stale markers of already announced series carry nothing.
    assert_eq!(out.stale.len(), 0);
}

#[test]
fn series_text_of_a_failed_scrape_stays_cached_as_in_prometheus() {
    let mut p = processor("");
    // Prometheus's scrape_series_added counts such text once, not on every failed scrape.
    assert_eq!(run(&mut p, "a 1\nb{ 2\n").err().unwrap().series_added, 1);
    assert_eq!(run(&mut p, "a 1\nb{ 2\n").err().unwrap().series_added, 0);
}

/// Samples as (series, value bits, timestamp), or the error and the samples scraped.
type Outcome = Result<Vec<(String, u64, i64)>, (String, usize)>;

/// What a scrape yields, comparable across processors (series by labels, not by id).
fn outcome(r: Result<Processed, Failed>) -> Outcome {
    match r {
        Ok(p) => {
            let mut v: Vec<(String, u64, i64)> = p
                .samples
                .iter()
                .map(|s| (series_of(s).to_string(), s.value.to_bits(), s.timestamp_ms))
                .collect();
            v.sort();
            Ok(v)
        }
        Err(f) => Err((f.error, f.scraped)),
    }
}

#[test]
fn a_warm_cache_reads_each_body_as_a_cold_one_does() {
    // Each body after the first re-reads known series text (the parser's fast path), with
    // changed values, timestamps, broken values, reordered and new lines.
    let bodies = [
        "# TYPE a counter\na{x=\"1\"} 1\nb 2\nc{y=\"2\"} 3\n",
        "# TYPE a counter\na{x=\"1\"} 4\nb 5 1500\nc{y=\"2\"} 6\n",
        "# TYPE a counter\nc{y=\"2\"} 6\na{x=\"1\"} 4\nb 5\nd 7\n",
        "# TYPE a counter\na{x=\"1\"} x\nb 5\n",
        "# TYPE a counter\na{x=\"1\"} 4\nb1 5\nb {z=\"3\"} 6\n",
        "# TYPE a gauge\na{x=\"1\"} 4\nb 5 1 2\n",
        "a{x=\"1\"} 4\nb 5\nc{y=\"2\"} 6\n",
    ];
    let mut warm = processor("");
    for body in bodies {
        let warmed = outcome(run(&mut warm, body));
        let cold = outcome(run(&mut processor(""), body));
        assert_eq!(warmed, cold, "body {body:?}");
    }
}

#[test]
fn a_warm_cache_reads_a_body_in_another_format_as_a_cold_one_does() {
    fn run_in(p: &mut SampleProcessor, body: &str, format: Format) -> Outcome {
        outcome(p.process(body.as_bytes(), format, 1_000, fresh()))
    }
    // The text format allows a blank after a label's comma and before `{`; OpenMetrics does
    // not, so text seen in one format must not take the other's fast path.
    let bodies = [
        ("a{x=\"1\", y=\"2\"} 1\nb 2\n", Format::Text),
        ("a{x=\"1\", y=\"2\"} 1\nb 2\n# EOF\n", Format::OpenMetrics),
        (
            "a{x=\"1\",y=\"2\"} 3\nb 4 1.5\n# EOF\n",
            Format::OpenMetrics,
        ),
        ("a{x=\"1\",y=\"2\"} 5\nb 6 1600\n", Format::Text),
        (
            "a{x=\"1\",y=\"2\"} 7\nb 8 # {t=\"x\"} 1\n# EOF\n",
            Format::OpenMetrics,
        ),
        (
            "a{x=\"1\",y=\"2\"} 9\nb 10 # {t=\"x\"} x\n# EOF\n",
            Format::OpenMetrics,
        ),
    ];
    let mut warm = processor("");
    for (body, format) in bodies {
        let warmed = run_in(&mut warm, body, format);
        let cold = run_in(&mut processor(""), body, format);
        assert_eq!(warmed, cold, "{format:?} body {body:?}");
    }
    assert!(
        run_in(&mut processor(""), bodies[1].0, Format::OpenMetrics).is_err(),
        "a blank inside braces fails an OpenMetrics scrape"
    );
    assert!(run_in(&mut processor(""), bodies[4].0, Format::OpenMetrics).is_ok());
}

#[test]
fn an_exposed_timestamp_not_newer_than_what_was_written_is_dropped_and_counted() {
    // cAdvisor-style: honor_timestamps with track_timestamps_staleness. A failed scrape writes
    // stale markers at its scrape time; an exposed timestamp behind them would be refused by
    // any TSDB (and a remote receiver refuses the whole request carrying it).
    let mut p = processor("    track_timestamps_staleness: true\n");
    let ts = |out: &Processed| -> Vec<i64> { out.samples.iter().map(|s| s.timestamp_ms).collect() };
    let out = p
        .process(b"a 1 900\n", Format::Text, 1_000, fresh())
        .unwrap();
    assert_eq!((ts(&out), out.out_of_order), (vec![900], 0));
    let stale = p.fail(2_000, fresh());
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].timestamp_ms, 2_000);
    // Behind the marker: dropped, counted; the series is still there (no new marker).
    let out = p
        .process(b"a 2 1900\n", Format::Text, 3_000, fresh())
        .unwrap();
    assert_eq!((ts(&out), out.out_of_order), (vec![], 1));
    assert!(out.stale.is_empty() && out.retired.is_empty());
    // Past the marker: written again.
    let out = p
        .process(b"a 3 2100\n", Format::Text, 5_000, fresh())
        .unwrap();
    assert_eq!((ts(&out), out.out_of_order), (vec![2100], 0));
    // The same exposed time again (a value not refreshed yet): dropped, not counted.
    let out = p
        .process(b"a 3 2100\n", Format::Text, 5_500, fresh())
        .unwrap();
    assert_eq!((ts(&out), out.out_of_order), (vec![], 0));
    // A failed scrape's exposed timestamps are not remembered: nothing was written.
    let err = p.process(b"a 4 2200\nb{", Format::Text, 6_000, fresh());
    assert!(err.is_err());
    let out = p
        .process(b"a 4 2150\n", Format::Text, 7_000, fresh())
        .unwrap();
    assert_eq!((ts(&out), out.out_of_order), (vec![2150], 0));
    // Scrape-time samples are unaffected.
    let mut p = processor("");
    let out = p.process(b"a 1\n", Format::Text, 1_000, fresh()).unwrap();
    assert_eq!(ts(&out), vec![1_000]);
}

#[test]
fn metadata_is_handed_on_when_it_changes_not_on_every_scrape() {
    let mut p = processor("");
    let body = "# HELP a The a.\n# TYPE a counter\na 1\n# TYPE b gauge\nb 2\n";
    let first = run(&mut p, body).unwrap();
    let mut m = first.metadata.clone();
    m.sort_by(|x, y| x.family.cmp(&y.family));
    assert_eq!(
        m.iter()
            .map(|m| (
                m.family.as_str(),
                m.kind.as_str(),
                m.help.as_str(),
                m.unit.as_str()
            ))
            .collect::<Vec<_>>(),
        [("a", "counter", "The a.", ""), ("b", "gauge", "", "")]
    );
    // The same lines again (other values): nothing to hand on.
    let same = run(&mut p, &body.replace("a 1", "a 5")).unwrap();
    assert!(same.metadata.is_empty(), "{:?}", same.metadata);
    // A changed help text: the families again.
    let changed = run(&mut p, &body.replace("The a.", "The new a.")).unwrap();
    assert_eq!(changed.metadata.len(), 2);
    // A failed scrape does not count as having handed it on.
    let mut p = processor("");
    assert!(run(&mut p, "# HELP a x\na 1\nb{").is_err());
    assert_eq!(run(&mut p, "# HELP a x\na 1\n").unwrap().metadata.len(), 1);
}

#[test]
fn a_series_costs_the_cache_no_more_than_its_budget() {
    // Bytes per series are the budget (module docs): these sizes are counted per series.
    assert_eq!(std::mem::size_of::<CacheEntry>(), 40);
    assert_eq!(std::mem::size_of::<Option<Slot>>(), 40);
}

/// A protobuf scrape writes what the text scrape of the same exposition writes (series,
/// values, metadata), its second scrape finds every series in the cache, and a series that
/// vanishes gets its stale marker.
#[test]
fn a_protobuf_scrape_writes_what_the_text_scrape_writes() {
    let text = "# HELP c Requests.\n# TYPE c counter\nc{code=\"200\"} 7\n\
        # TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n\
        # TYPE s summary\ns{quantile=\"0.9\"} 3\ns_sum 4\ns_count 5\n";
    let families = [
        r#"name: "c" help: "Requests." type: COUNTER
           metric: < label: < name: "code" value: "200" > counter: < value: 7 > >"#,
        r#"name: "h" type: HISTOGRAM metric: < histogram: < sample_count: 2 sample_sum: 1.5
           bucket: < upper_bound: 0.5 cumulative_count: 1 > > >"#,
        r#"name: "s" type: SUMMARY metric: < summary: < sample_count: 5 sample_sum: 4
           quantile: < quantile: 0.9 value: 3 > > >"#,
    ];
    let proto = crate::scrape::protobuf::tests::delimited(&families);
    let values = |p: &Processed| {
        let mut v: Vec<(String, u64)> = p
            .samples
            .iter()
            .map(|s| (series_of(s).to_string(), s.value.to_bits()))
            .collect();
        v.sort();
        v
    };
    let mut from_text = processor("");
    let want = run(&mut from_text, text).unwrap();
    let mut p = processor("");
    let got = p.process(&proto, Format::Protobuf, 1_000, fresh()).unwrap();
    assert_eq!(values(&got), values(&want));
    assert_eq!(got.samples.len(), 8);
    assert_eq!((got.scraped, got.series_added), (8, 8));
    assert_eq!(got.metadata, want.metadata);

    let again = p.process(&proto, Format::Protobuf, 2_000, fresh()).unwrap();
    assert_eq!((again.scraped, again.series_added), (8, 0));
    assert!(again.stale.is_empty());

    let fewer = crate::scrape::protobuf::tests::delimited(&families[..1]);
    let third = p.process(&fewer, Format::Protobuf, 3_000, fresh()).unwrap();
    assert_eq!(third.samples.len(), 1);
    assert_eq!(third.stale.len(), 7);
    assert!(
        third
            .stale
            .iter()
            .all(|s| s.value.to_bits() == STALE_NAN_BITS && s.timestamp_ms == 3_000)
    );
}

/// A body that does not decode fails the scrape with the decoder's words.
#[test]
fn an_undecodable_protobuf_body_fails_the_scrape() {
    let mut p = processor("");
    let e = p
        .process(&[0x05, 0x0a], Format::Protobuf, 1_000, fresh())
        .err()
        .unwrap();
    assert!(
        e.error
            .starts_with("clientpb: insufficient length of buffer"),
        "{}",
        e.error
    );
}

/// A body with one native histogram (schema 2, four buckets, classic buckets too) and a gauge.
fn native_body(with_histogram: bool) -> Vec<u8> {
    let mut families = vec![r#"name: "g" type: GAUGE metric: < gauge: < value: 1 > >"#];
    if with_histogram {
        families.push(
            r#"name: "lat" type: HISTOGRAM metric: < label: < name: "path" value: "/" >
               histogram: < sample_count: 4 sample_sum: 10 schema: 2 zero_threshold: 0.001
                 positive_span: < offset: 0 length: 4 >
                 positive_delta: 1 positive_delta: 0 positive_delta: 0 positive_delta: 0
                 bucket: < upper_bound: 1 cumulative_count: 2 > > >"#,
        );
    }
    crate::scrape::protobuf::tests::delimited(&families)
}

fn histograms_of(p: &Processed) -> Vec<(String, Histogram)> {
    p.samples
        .iter()
        .filter_map(|s| Some((series_of(s).to_string(), (**s.histogram.as_ref()?).clone())))
        .collect()
}

/// `scrape_native_histograms: true`: the histogram is one sample with the target's labels,
/// counted once in `scrape_series_added` and in the load reported for placement; the bucket limit lowers its resolution; when it
/// vanishes it gets a stale marker like any series.
#[test]
fn a_native_histogram_is_one_limited_series_and_goes_stale() {
    let mut p =
        processor("    scrape_native_histograms: true\n    native_histogram_bucket_limit: 2\n");
    let out = p
        .process(&native_body(true), Format::Protobuf, 1_000, fresh())
        .unwrap();
    assert_eq!(
        (out.scraped, out.series_added, out.samples.len()),
        (2, 2, 2)
    );
    // The load the worker reports for placement (`post_relabel`) counts it once too.
    assert_eq!(out.post_relabel, 2);
    let h = histograms_of(&out);
    assert_eq!(h.len(), 1);
    assert_eq!(
        h[0].0,
        r#"{__name__="lat", instance="i:9", job="j", path="/", team="t"}"#
    );
    // Buckets 0..=3 of schema 2 are three at schema 1 (indexes 0, 1, 2) and two at schema 0
    // (0, 1): under a limit of 2, schema 0.
    assert_eq!((h[0].1.schema, h[0].1.bucket_count()), (0, 2));
    assert_eq!(h[0].1.sum, 10.0);

    let again = p
        .process(&native_body(true), Format::Protobuf, 2_000, fresh())
        .unwrap();
    assert_eq!(again.series_added, 0);
    let gone = p
        .process(&native_body(false), Format::Protobuf, 3_000, fresh())
        .unwrap();
    assert_eq!(gone.stale.len(), 1);
    assert_eq!(series_of(&gone.stale[0]).to_string(), h[0].0);
    assert_eq!(gone.stale[0].value.to_bits(), STALE_NAN_BITS);
}

/// Off (the default), the same body is read as its classic series; with
/// `always_scrape_classic_histograms` both come.
#[test]
fn native_histograms_off_keep_classic_and_always_scrape_classic_keeps_both() {
    let names = |p: &Processed| -> Vec<String> {
        let mut v: Vec<String> = p
            .samples
            .iter()
            .map(|s| {
                let l = series_of(s).to_string();
                format!("{}{}", if s.histogram.is_some() { "H " } else { "" }, l)
            })
            .filter(|l| l.contains("lat"))
            .collect();
        v.sort();
        v
    };
    let mut off = processor("");
    let classic = off
        .process(&native_body(true), Format::Protobuf, 1_000, fresh())
        .unwrap();
    assert!(histograms_of(&classic).is_empty());
    assert_eq!(names(&classic).len(), 4, "{:?}", names(&classic));

    let mut both = processor(
        "    scrape_native_histograms: true\n    always_scrape_classic_histograms: true\n",
    );
    let out = both
        .process(&native_body(true), Format::Protobuf, 1_000, fresh())
        .unwrap();
    assert_eq!(histograms_of(&out).len(), 1);
    assert_eq!(names(&out).len(), 5, "{:?}", names(&out));
}

/// Over the bucket limit at the lowest resolution (or with custom buckets) the scrape fails,
/// as Prometheus's `errBucketLimit` fails it.
#[test]
fn a_histogram_over_the_bucket_limit_at_the_lowest_schema_fails_the_scrape() {
    let body = crate::scrape::protobuf::tests::delimited(&[r#"name: "lat" type: HISTOGRAM
        metric: < histogram: < sample_count: 4 sample_sum: 10 schema: -4
          positive_span: < offset: 0 length: 1 > positive_span: < offset: 5 length: 1 >
          positive_delta: 1 positive_delta: 0 > >"#]);
    let mut p =
        processor("    scrape_native_histograms: true\n    native_histogram_bucket_limit: 1\n");
    let e = p
        .process(&body, Format::Protobuf, 1_000, fresh())
        .err()
        .unwrap();
    assert_eq!(e.error, "histogram bucket limit exceeded");
}
