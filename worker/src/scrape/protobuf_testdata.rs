//! Prometheus's own protobuf parser test inputs (`model/textparse/protobufparse_test.go`,
//! `createTestProtoBuf`, at prometheus/prometheus d15adb9) and the entries Prometheus expects
//! from them with `ignoreNativeHistograms=true, parseClassicHistograms=false` (its fourth
//! `TestProtobufParse` scenario), ported: the families as the text-format protobuf they are
//! written in, the expectations as a table; for the scenarios with native histograms on (the
//! first, and the third that keeps classic series), the series keys in order.

use super::super::parser::MetricType;

/// One expected entry; `m` is Prometheus's series key (`entryBytes`).
pub(super) enum Want {
    Help(&'static [u8], &'static str),
    Unit(&'static [u8], &'static str),
    Type(&'static [u8], MetricType),
    Sample {
        m: &'static [u8],
        /// As Go's literal: parsed with `str::parse`.
        v: &'static str,
        t: Option<i64>,
        /// Start (created) timestamp, ms; not ingested by promshard.
        #[allow(dead_code)]
        st: i64,
        /// Exemplars Prometheus returns with the sample; not read by promshard yet.
        #[allow(dead_code)]
        exemplars: usize,
        lset: &'static [(&'static str, &'static str)],
    },
}

pub(super) const FAMILIES: &[&str] = &[
    r#"name: "go_build_info"
help: "Build information about the main Go module."
type: GAUGE
metric: <
  label: <
    name: "checksum"
    value: ""
  >
  label: <
    name: "path"
    value: "github.com/prometheus/client_golang"
  >
  label: <
    name: "version"
    value: "(devel)"
  >
  gauge: <
    value: 1
  >
>"#,
    r#"name: "go_memstats_alloc_bytes_total"
help: "Total number of bytes allocated, even if freed."
type: COUNTER
unit: "bytes"
metric: <
  counter: <
    value: 1.546544e+06
    exemplar: <
      label: <
        name: "dummyID"
        value: "42"
      >
      value: 12
      timestamp: <
        seconds: 1625851151
        nanos: 233181499
      >
    >
  >
>"#,
    r#"name: "something_untyped"
help: "Just to test the untyped type."
type: UNTYPED
metric: <
  untyped: <
    value: 42
  >
  timestamp_ms: 1234567
>"#,
    r#"name: "test_histogram"
help: "Test histogram with many buckets removed to keep it manageable in size."
type: HISTOGRAM
metric: <
  histogram: <
    sample_count: 175
    sample_sum: 0.0008280461746287094
    bucket: <
      cumulative_count: 2
      upper_bound: -0.0004899999999999998
    >
    bucket: <
      cumulative_count: 4
      upper_bound: -0.0003899999999999998
      exemplar: <
        label: <
          name: "dummyID"
          value: "59727"
        >
        value: -0.00039
        timestamp: <
          seconds: 1625851155
          nanos: 146848499
        >
      >
    >
    bucket: <
      cumulative_count: 16
      upper_bound: -0.0002899999999999998
      exemplar: <
        label: <
          name: "dummyID"
          value: "5617"
        >
        value: -0.00029
      >
    >
    schema: 3
    zero_threshold: 2.938735877055719e-39
    zero_count: 2
    negative_span: <
      offset: -162
      length: 1
    >
    negative_span: <
      offset: 23
      length: 4
    >
    negative_delta: 1
    negative_delta: 3
    negative_delta: -2
    negative_delta: -1
    negative_delta: 1
    positive_span: <
      offset: -161
      length: 1
    >
    positive_span: <
      offset: 8
      length: 3
    >
    positive_delta: 1
    positive_delta: 2
    positive_delta: -1
    positive_delta: -1
  >
  timestamp_ms: 1234568
>"#,
    r#"name: "test_gauge_histogram"
help: "Like test_histogram but as gauge histogram."
type: GAUGE_HISTOGRAM
metric: <
  histogram: <
    sample_count: 175
    sample_sum: 0.0008280461746287094
    bucket: <
      cumulative_count: 2
      upper_bound: -0.0004899999999999998
    >
    bucket: <
      cumulative_count: 4
      upper_bound: -0.0003899999999999998
      exemplar: <
        label: <
          name: "dummyID"
          value: "59727"
        >
        value: -0.00039
        timestamp: <
          seconds: 1625851155
          nanos: 146848499
        >
      >
    >
    bucket: <
      cumulative_count: 16
      upper_bound: -0.0002899999999999998
      exemplar: <
        label: <
          name: "dummyID"
          value: "5617"
        >
        value: -0.00029
      >
    >
    schema: 3
    zero_threshold: 2.938735877055719e-39
    zero_count: 2
    negative_span: <
      offset: -162
      length: 1
    >
    negative_span: <
      offset: 23
      length: 4
    >
    negative_delta: 1
    negative_delta: 3
    negative_delta: -2
    negative_delta: -1
    negative_delta: 1
    positive_span: <
      offset: -161
      length: 1
    >
    positive_span: <
      offset: 8
      length: 3
    >
    positive_delta: 1
    positive_delta: 2
    positive_delta: -1
    positive_delta: -1
  >
  timestamp_ms: 1234568
>"#,
    r#"name: "test_float_histogram"
help: "Test float histogram with many buckets removed to keep it manageable in size."
type: HISTOGRAM
metric: <
  histogram: <
    sample_count_float: 175.0
    sample_sum: 0.0008280461746287094
    bucket: <
      cumulative_count_float: 2.0
      upper_bound: -0.0004899999999999998
    >
    bucket: <
      cumulative_count_float: 4.0
      upper_bound: -0.0003899999999999998
      exemplar: <
        label: <
          name: "dummyID"
          value: "59727"
        >
        value: -0.00039
        timestamp: <
          seconds: 1625851155
          nanos: 146848499
        >
      >
    >
    bucket: <
      cumulative_count_float: 16
      upper_bound: -0.0002899999999999998
      exemplar: <
        label: <
          name: "dummyID"
          value: "5617"
        >
        value: -0.00029
      >
    >
    schema: 3
    zero_threshold: 2.938735877055719e-39
    zero_count_float: 2.0
    negative_span: <
      offset: -162
      length: 1
    >
    negative_span: <
      offset: 23
      length: 4
    >
    negative_count: 1.0
    negative_count: 3.0
    negative_count: -2.0
    negative_count: -1.0
    negative_count: 1.0
    positive_span: <
      offset: -161
      length: 1
    >
    positive_span: <
      offset: 8
      length: 3
    >
    positive_count: 1.0
    positive_count: 2.0
    positive_count: -1.0
    positive_count: -1.0
  >
  timestamp_ms: 1234568
>"#,
    r#"name: "test_gauge_float_histogram"
help: "Like test_float_histogram but as gauge histogram."
type: GAUGE_HISTOGRAM
metric: <
  histogram: <
    sample_count_float: 175.0
    sample_sum: 0.0008280461746287094
    bucket: <
      cumulative_count_float: 2.0
      upper_bound: -0.0004899999999999998
    >
    bucket: <
      cumulative_count_float: 4.0
      upper_bound: -0.0003899999999999998
      exemplar: <
        label: <
          name: "dummyID"
          value: "59727"
        >
        value: -0.00039
        timestamp: <
          seconds: 1625851155
          nanos: 146848499
        >
      >
    >
    bucket: <
      cumulative_count_float: 16
      upper_bound: -0.0002899999999999998
      exemplar: <
        label: <
          name: "dummyID"
          value: "5617"
        >
        value: -0.00029
      >
    >
    schema: 3
    zero_threshold: 2.938735877055719e-39
    zero_count_float: 2.0
    negative_span: <
      offset: -162
      length: 1
    >
    negative_span: <
      offset: 23
      length: 4
    >
    negative_count: 1.0
    negative_count: 3.0
    negative_count: -2.0
    negative_count: -1.0
    negative_count: 1.0
    positive_span: <
      offset: -161
      length: 1
    >
    positive_span: <
      offset: 8
      length: 3
    >
    positive_count: 1.0
    positive_count: 2.0
    positive_count: -1.0
    positive_count: -1.0
  >
  timestamp_ms: 1234568
>"#,
    r#"name: "test_histogram2"
help: "Similar histogram as before but now without sparse buckets."
type: HISTOGRAM
metric: <
  histogram: <
    sample_count: 175
    sample_sum: 0.000828
    bucket: <
      cumulative_count: 2
      upper_bound: -0.00048
    >
    bucket: <
      cumulative_count: 4
      upper_bound: -0.00038
      exemplar: <
        label: <
          name: "dummyID"
          value: "59727"
        >
        value: -0.00038
        timestamp: <
          seconds: 1625851153
          nanos: 146848499
        >
      >
    >
    bucket: <
      cumulative_count: 16
      upper_bound: 1
      exemplar: <
        label: <
          name: "dummyID"
          value: "5617"
        >
        value: -0.000295
      >
    >
    schema: 0
    zero_threshold: 0
  >
>"#,
    r#"name: "test_histogram3"
help: "Similar histogram as before but now with integer buckets."
type: HISTOGRAM
metric: <
  histogram: <
    sample_count: 6
    sample_sum: 50
    bucket: <
      cumulative_count: 2
      upper_bound: -20
    >
    bucket: <
      cumulative_count: 4
      upper_bound: 20
      exemplar: <
        label: <
          name: "dummyID"
          value: "59727"
        >
        value: 15
        timestamp: <
          seconds: 1625851153
          nanos: 146848499
        >
      >
    >
    bucket: <
      cumulative_count: 6
      upper_bound: 30
      exemplar: <
        label: <
          name: "dummyID"
          value: "5617"
        >
        value: 25
      >
    >
    schema: 0
    zero_threshold: 0
  >
>"#,
    r#"name: "test_histogram_family"
help: "Test histogram metric family with two very simple histograms."
type: HISTOGRAM
metric: <
  label: <
    name: "foo"
    value: "bar"
  >
  histogram: <
    sample_count: 5
    sample_sum: 12.1
    bucket: <
      cumulative_count: 2
      upper_bound: 1.1
    >
    bucket: <
      cumulative_count: 3
      upper_bound: 2.2
    >
    schema: 3
    positive_span: <
      offset: 8
      length: 2
    >
    positive_delta: 2
    positive_delta: 1
  >
>
metric: <
  label: <
    name: "foo"
    value: "baz"
  >
  histogram: <
    sample_count: 6
    sample_sum: 13.1
    bucket: <
      cumulative_count: 1
      upper_bound: 1.1
    >
    bucket: <
      cumulative_count: 5
      upper_bound: 2.2
    >
    schema: 3
    positive_span: <
      offset: 8
      length: 2
    >
    positive_delta: 1
    positive_delta: 4
  >
>"#,
    r#"name: "test_float_histogram_with_zerothreshold_zero"
help: "Test float histogram with a zero threshold of zero."
type: HISTOGRAM
metric: <
  histogram: <
    sample_count_float: 5.0
    sample_sum: 12.1
    schema: 3
    positive_span: <
      offset: 8
      length: 2
    >
    positive_count: 2.0
    positive_count: 3.0
  >
>"#,
    r#"name: "rpc_durations_seconds"
help: "RPC latency distributions."
type: SUMMARY
metric: <
  label: <
    name: "service"
    value: "exponential"
  >
  summary: <
    sample_count: 262
    sample_sum: 0.00025551262820703587
    quantile: <
      quantile: 0.5
      value: 6.442786329648548e-07
    >
    quantile: <
      quantile: 0.9
      value: 1.9435742936658396e-06
    >
    quantile: <
      quantile: 0.99
      value: 4.0471608667037015e-06
    >
  >
>"#,
    r#"name: "without_quantiles"
help: "A summary without quantiles."
type: SUMMARY
metric: <
  summary: <
    sample_count: 42
    sample_sum: 1.234
  >
>"#,
    r#"name: "empty_histogram"
help: "A histogram without observations and with a zero threshold of zero but with a no-op span to identify it as a native histogram."
type: HISTOGRAM
metric: <
  histogram: <
    positive_span: <
      offset: 0
      length: 0
    >
  >
>"#,
    r#"name: "test_counter_with_createdtimestamp"
help: "A counter with a created timestamp."
type: COUNTER
metric: <
  counter: <
    value: 42
    start_timestamp: <
      seconds: 1625851153
      nanos: 146848499
    >
  >
>"#,
    r#"name: "test_summary_with_createdtimestamp"
help: "A summary with a created timestamp."
type: SUMMARY
metric: <
  summary: <
    sample_count: 42
    sample_sum: 1.234
    start_timestamp: <
      seconds: 1625851153
      nanos: 146848499
    >
  >
>"#,
    r#"name: "test_histogram_with_createdtimestamp"
help: "A histogram with a created timestamp."
type: HISTOGRAM
metric: <
  histogram: <
    start_timestamp: <
      seconds: 1625851153
      nanos: 146848499
    >
    positive_span: <
      offset: 0
      length: 0
    >
  >
>"#,
    r#"name: "test_gaugehistogram_with_createdtimestamp"
help: "A gauge histogram with a created timestamp."
type: GAUGE_HISTOGRAM
metric: <
  histogram: <
    start_timestamp: <
      seconds: 1625851153
      nanos: 146848499
    >
    positive_span: <
      offset: 0
      length: 0
    >
  >
>"#,
    r#"name: "test_histogram_with_native_histogram_exemplars"
help: "A histogram with native histogram exemplars."
type: HISTOGRAM
metric: <
  histogram: <
    sample_count: 175
    sample_sum: 0.0008280461746287094
    bucket: <
      cumulative_count: 2
      upper_bound: -0.0004899999999999998
    >
    bucket: <
      cumulative_count: 4
      upper_bound: -0.0003899999999999998
      exemplar: <
	    label: <
	      name: "dummyID"
	      value: "59727"
	    >
	    value: -0.00039
	    timestamp: <
	      seconds: 1625851155
	      nanos: 146848499
	    >
      >
    >
    bucket: <
      cumulative_count: 16
      upper_bound: -0.0002899999999999998
      exemplar: <
	    label: <
	      name: "dummyID"
	      value: "5617"
	    >
	    value: -0.00029
      >
    >
    schema: 3
    zero_threshold: 2.938735877055719e-39
    zero_count: 2
    negative_span: <
      offset: -162
      length: 1
    >
    negative_span: <
      offset: 23
      length: 4
    >
    negative_delta: 1
    negative_delta: 3
    negative_delta: -2
    negative_delta: -1
    negative_delta: 1
    positive_span: <
      offset: -161
      length: 1
    >
    positive_span: <
      offset: 8
      length: 3
    >
    positive_delta: 1
    positive_delta: 2
    positive_delta: -1
    positive_delta: -1
    exemplars: <
      label: <
        name: "dummyID"
        value: "59780"
      >
      value: -0.00039
      timestamp: <
        seconds: 1625851155
        nanos: 146848499
      >
    >
    exemplars: <
      label: <
        name: "dummyID"
        value: "5617"
      >
      value: -0.00029
    >
    exemplars: <
      label: <
        name: "dummyID"
        value: "59772"
      >
      value: -0.00052
      timestamp: <
        seconds: 1625851160
        nanos: 156848499
      >
    >
  >
  timestamp_ms: 1234568
>"#,
    r#"name: "test_histogram_with_native_histogram_exemplars2"
help: "Another histogram with native histogram exemplars."
type: HISTOGRAM
metric: <
  histogram: <
    sample_count: 175
    sample_sum: 0.0008280461746287094
    bucket: <
      cumulative_count: 2
      upper_bound: -0.0004899999999999998
    >
    bucket: <
      cumulative_count: 4
      upper_bound: -0.0003899999999999998
    >
    bucket: <
      cumulative_count: 16
      upper_bound: -0.0002899999999999998
    >
    schema: 3
    zero_threshold: 2.938735877055719e-39
    zero_count: 2
    negative_span: <
      offset: -162
      length: 1
    >
    negative_span: <
      offset: 23
      length: 4
    >
    negative_delta: 1
    negative_delta: 3
    negative_delta: -2
    negative_delta: -1
    negative_delta: 1
    positive_span: <
      offset: -161
      length: 1
    >
    positive_span: <
      offset: 8
      length: 3
    >
    positive_delta: 1
    positive_delta: 2
    positive_delta: -1
    positive_delta: -1
    exemplars: <
      label: <
        name: "dummyID"
        value: "59780"
      >
      value: -0.00039
      timestamp: <
        seconds: 1625851155
        nanos: 146848499
      >
    >
  >
  timestamp_ms: 1234568
>"#,
];

pub(super) const IGNORE_NATIVE: &[Want] = &[
    Want::Help(b"go_build_info", "Build information about the main Go module."),
    Want::Type(b"go_build_info", MetricType::Gauge),
    Want::Sample { m: b"go_build_info\xffchecksum\xff\xffpath\xffgithub.com/prometheus/client_golang\xffversion\xff(devel)", v: "1", t: None, st: 0, exemplars: 0, lset: &[("__name__", "go_build_info"), ("checksum", ""), ("path", "github.com/prometheus/client_golang"), ("version", "(devel)")] },
    Want::Help(b"go_memstats_alloc_bytes_total", "Total number of bytes allocated, even if freed."),
    Want::Unit(b"go_memstats_alloc_bytes_total", "bytes"),
    Want::Type(b"go_memstats_alloc_bytes_total", MetricType::Counter),
    Want::Sample { m: b"go_memstats_alloc_bytes_total", v: "1.546544e+06", t: None, st: 0, exemplars: 1, lset: &[("__name__", "go_memstats_alloc_bytes_total")] },
    Want::Help(b"something_untyped", "Just to test the untyped type."),
    Want::Type(b"something_untyped", MetricType::Unknown),
    Want::Sample { m: b"something_untyped", v: "42", t: Some(1234567), st: 0, exemplars: 0, lset: &[("__name__", "something_untyped")] },
    Want::Help(b"test_histogram", "Test histogram with many buckets removed to keep it manageable in size."),
    Want::Type(b"test_histogram", MetricType::Histogram),
    Want::Sample { m: b"test_histogram_count", v: "175", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_count")] },
    Want::Sample { m: b"test_histogram_sum", v: "0.0008280461746287094", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_sum")] },
    Want::Sample { m: b"test_histogram_bucket\xffle\xff-0.0004899999999999998", v: "2", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_bucket"), ("le", "-0.0004899999999999998")] },
    Want::Sample { m: b"test_histogram_bucket\xffle\xff-0.0003899999999999998", v: "4", t: Some(1234568), st: 0, exemplars: 1, lset: &[("__name__", "test_histogram_bucket"), ("le", "-0.0003899999999999998")] },
    Want::Sample { m: b"test_histogram_bucket\xffle\xff-0.0002899999999999998", v: "16", t: Some(1234568), st: 0, exemplars: 1, lset: &[("__name__", "test_histogram_bucket"), ("le", "-0.0002899999999999998")] },
    Want::Sample { m: b"test_histogram_bucket\xffle\xff+Inf", v: "175", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_bucket"), ("le", "+Inf")] },
    Want::Help(b"test_gauge_histogram", "Like test_histogram but as gauge histogram."),
    Want::Type(b"test_gauge_histogram", MetricType::GaugeHistogram),
    Want::Sample { m: b"test_gauge_histogram_count", v: "175", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_gauge_histogram_count")] },
    Want::Sample { m: b"test_gauge_histogram_sum", v: "0.0008280461746287094", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_gauge_histogram_sum")] },
    Want::Sample { m: b"test_gauge_histogram_bucket\xffle\xff-0.0004899999999999998", v: "2", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_gauge_histogram_bucket"), ("le", "-0.0004899999999999998")] },
    Want::Sample { m: b"test_gauge_histogram_bucket\xffle\xff-0.0003899999999999998", v: "4", t: Some(1234568), st: 0, exemplars: 1, lset: &[("__name__", "test_gauge_histogram_bucket"), ("le", "-0.0003899999999999998")] },
    Want::Sample { m: b"test_gauge_histogram_bucket\xffle\xff-0.0002899999999999998", v: "16", t: Some(1234568), st: 0, exemplars: 1, lset: &[("__name__", "test_gauge_histogram_bucket"), ("le", "-0.0002899999999999998")] },
    Want::Sample { m: b"test_gauge_histogram_bucket\xffle\xff+Inf", v: "175", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_gauge_histogram_bucket"), ("le", "+Inf")] },
    Want::Help(b"test_float_histogram", "Test float histogram with many buckets removed to keep it manageable in size."),
    Want::Type(b"test_float_histogram", MetricType::Histogram),
    Want::Sample { m: b"test_float_histogram_count", v: "175", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_float_histogram_count")] },
    Want::Sample { m: b"test_float_histogram_sum", v: "0.0008280461746287094", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_float_histogram_sum")] },
    Want::Sample { m: b"test_float_histogram_bucket\xffle\xff-0.0004899999999999998", v: "2", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_float_histogram_bucket"), ("le", "-0.0004899999999999998")] },
    Want::Sample { m: b"test_float_histogram_bucket\xffle\xff-0.0003899999999999998", v: "4", t: Some(1234568), st: 0, exemplars: 1, lset: &[("__name__", "test_float_histogram_bucket"), ("le", "-0.0003899999999999998")] },
    Want::Sample { m: b"test_float_histogram_bucket\xffle\xff-0.0002899999999999998", v: "16", t: Some(1234568), st: 0, exemplars: 1, lset: &[("__name__", "test_float_histogram_bucket"), ("le", "-0.0002899999999999998")] },
    Want::Sample { m: b"test_float_histogram_bucket\xffle\xff+Inf", v: "175", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_float_histogram_bucket"), ("le", "+Inf")] },
    Want::Help(b"test_gauge_float_histogram", "Like test_float_histogram but as gauge histogram."),
    Want::Type(b"test_gauge_float_histogram", MetricType::GaugeHistogram),
    Want::Sample { m: b"test_gauge_float_histogram_count", v: "175", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_gauge_float_histogram_count")] },
    Want::Sample { m: b"test_gauge_float_histogram_sum", v: "0.0008280461746287094", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_gauge_float_histogram_sum")] },
    Want::Sample { m: b"test_gauge_float_histogram_bucket\xffle\xff-0.0004899999999999998", v: "2", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_gauge_float_histogram_bucket"), ("le", "-0.0004899999999999998")] },
    Want::Sample { m: b"test_gauge_float_histogram_bucket\xffle\xff-0.0003899999999999998", v: "4", t: Some(1234568), st: 0, exemplars: 1, lset: &[("__name__", "test_gauge_float_histogram_bucket"), ("le", "-0.0003899999999999998")] },
    Want::Sample { m: b"test_gauge_float_histogram_bucket\xffle\xff-0.0002899999999999998", v: "16", t: Some(1234568), st: 0, exemplars: 1, lset: &[("__name__", "test_gauge_float_histogram_bucket"), ("le", "-0.0002899999999999998")] },
    Want::Sample { m: b"test_gauge_float_histogram_bucket\xffle\xff+Inf", v: "175", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_gauge_float_histogram_bucket"), ("le", "+Inf")] },
    Want::Help(b"test_histogram2", "Similar histogram as before but now without sparse buckets."),
    Want::Type(b"test_histogram2", MetricType::Histogram),
    Want::Sample { m: b"test_histogram2_count", v: "175", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram2_count")] },
    Want::Sample { m: b"test_histogram2_sum", v: "0.000828", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram2_sum")] },
    Want::Sample { m: b"test_histogram2_bucket\xffle\xff-0.00048", v: "2", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram2_bucket"), ("le", "-0.00048")] },
    Want::Sample { m: b"test_histogram2_bucket\xffle\xff-0.00038", v: "4", t: None, st: 0, exemplars: 1, lset: &[("__name__", "test_histogram2_bucket"), ("le", "-0.00038")] },
    Want::Sample { m: b"test_histogram2_bucket\xffle\xff1.0", v: "16", t: None, st: 0, exemplars: 1, lset: &[("__name__", "test_histogram2_bucket"), ("le", "1.0")] },
    Want::Sample { m: b"test_histogram2_bucket\xffle\xff+Inf", v: "175", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram2_bucket"), ("le", "+Inf")] },
    Want::Help(b"test_histogram3", "Similar histogram as before but now with integer buckets."),
    Want::Type(b"test_histogram3", MetricType::Histogram),
    Want::Sample { m: b"test_histogram3_count", v: "6", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram3_count")] },
    Want::Sample { m: b"test_histogram3_sum", v: "50", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram3_sum")] },
    Want::Sample { m: b"test_histogram3_bucket\xffle\xff-20.0", v: "2", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram3_bucket"), ("le", "-20.0")] },
    Want::Sample { m: b"test_histogram3_bucket\xffle\xff20.0", v: "4", t: None, st: 0, exemplars: 1, lset: &[("__name__", "test_histogram3_bucket"), ("le", "20.0")] },
    Want::Sample { m: b"test_histogram3_bucket\xffle\xff30.0", v: "6", t: None, st: 0, exemplars: 1, lset: &[("__name__", "test_histogram3_bucket"), ("le", "30.0")] },
    Want::Sample { m: b"test_histogram3_bucket\xffle\xff+Inf", v: "6", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram3_bucket"), ("le", "+Inf")] },
    Want::Help(b"test_histogram_family", "Test histogram metric family with two very simple histograms."),
    Want::Type(b"test_histogram_family", MetricType::Histogram),
    Want::Sample { m: b"test_histogram_family_count\xfffoo\xffbar", v: "5", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_family_count"), ("foo", "bar")] },
    Want::Sample { m: b"test_histogram_family_sum\xfffoo\xffbar", v: "12.1", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_family_sum"), ("foo", "bar")] },
    Want::Sample { m: b"test_histogram_family_bucket\xfffoo\xffbar\xffle\xff1.1", v: "2", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_family_bucket"), ("foo", "bar"), ("le", "1.1")] },
    Want::Sample { m: b"test_histogram_family_bucket\xfffoo\xffbar\xffle\xff2.2", v: "3", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_family_bucket"), ("foo", "bar"), ("le", "2.2")] },
    Want::Sample { m: b"test_histogram_family_bucket\xfffoo\xffbar\xffle\xff+Inf", v: "5", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_family_bucket"), ("foo", "bar"), ("le", "+Inf")] },
    Want::Sample { m: b"test_histogram_family_count\xfffoo\xffbaz", v: "6", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_family_count"), ("foo", "baz")] },
    Want::Sample { m: b"test_histogram_family_sum\xfffoo\xffbaz", v: "13.1", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_family_sum"), ("foo", "baz")] },
    Want::Sample { m: b"test_histogram_family_bucket\xfffoo\xffbaz\xffle\xff1.1", v: "1", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_family_bucket"), ("foo", "baz"), ("le", "1.1")] },
    Want::Sample { m: b"test_histogram_family_bucket\xfffoo\xffbaz\xffle\xff2.2", v: "5", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_family_bucket"), ("foo", "baz"), ("le", "2.2")] },
    Want::Sample { m: b"test_histogram_family_bucket\xfffoo\xffbaz\xffle\xff+Inf", v: "6", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_family_bucket"), ("foo", "baz"), ("le", "+Inf")] },
    Want::Help(b"test_float_histogram_with_zerothreshold_zero", "Test float histogram with a zero threshold of zero."),
    Want::Type(b"test_float_histogram_with_zerothreshold_zero", MetricType::Histogram),
    Want::Sample { m: b"test_float_histogram_with_zerothreshold_zero_count", v: "5", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_float_histogram_with_zerothreshold_zero_count")] },
    Want::Sample { m: b"test_float_histogram_with_zerothreshold_zero_sum", v: "12.1", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_float_histogram_with_zerothreshold_zero_sum")] },
    Want::Sample { m: b"test_float_histogram_with_zerothreshold_zero_bucket\xffle\xff+Inf", v: "5", t: None, st: 0, exemplars: 0, lset: &[("__name__", "test_float_histogram_with_zerothreshold_zero_bucket"), ("le", "+Inf")] },
    Want::Help(b"rpc_durations_seconds", "RPC latency distributions."),
    Want::Type(b"rpc_durations_seconds", MetricType::Summary),
    Want::Sample { m: b"rpc_durations_seconds_count\xffservice\xffexponential", v: "262", t: None, st: 0, exemplars: 0, lset: &[("__name__", "rpc_durations_seconds_count"), ("service", "exponential")] },
    Want::Sample { m: b"rpc_durations_seconds_sum\xffservice\xffexponential", v: "0.00025551262820703587", t: None, st: 0, exemplars: 0, lset: &[("__name__", "rpc_durations_seconds_sum"), ("service", "exponential")] },
    Want::Sample { m: b"rpc_durations_seconds\xffquantile\xff0.5\xffservice\xffexponential", v: "6.442786329648548e-07", t: None, st: 0, exemplars: 0, lset: &[("__name__", "rpc_durations_seconds"), ("quantile", "0.5"), ("service", "exponential")] },
    Want::Sample { m: b"rpc_durations_seconds\xffquantile\xff0.9\xffservice\xffexponential", v: "1.9435742936658396e-06", t: None, st: 0, exemplars: 0, lset: &[("__name__", "rpc_durations_seconds"), ("quantile", "0.9"), ("service", "exponential")] },
    Want::Sample { m: b"rpc_durations_seconds\xffquantile\xff0.99\xffservice\xffexponential", v: "4.0471608667037015e-06", t: None, st: 0, exemplars: 0, lset: &[("__name__", "rpc_durations_seconds"), ("quantile", "0.99"), ("service", "exponential")] },
    Want::Help(b"without_quantiles", "A summary without quantiles."),
    Want::Type(b"without_quantiles", MetricType::Summary),
    Want::Sample { m: b"without_quantiles_count", v: "42", t: None, st: 0, exemplars: 0, lset: &[("__name__", "without_quantiles_count")] },
    Want::Sample { m: b"without_quantiles_sum", v: "1.234", t: None, st: 0, exemplars: 0, lset: &[("__name__", "without_quantiles_sum")] },
    Want::Help(b"empty_histogram", "A histogram without observations and with a zero threshold of zero but with a no-op span to identify it as a native histogram."),
    Want::Type(b"empty_histogram", MetricType::Histogram),
    Want::Sample { m: b"empty_histogram_count", v: "0", t: None, st: 0, exemplars: 0, lset: &[("__name__", "empty_histogram_count")] },
    Want::Sample { m: b"empty_histogram_sum", v: "0", t: None, st: 0, exemplars: 0, lset: &[("__name__", "empty_histogram_sum")] },
    Want::Sample { m: b"empty_histogram_bucket\xffle\xff+Inf", v: "0", t: None, st: 0, exemplars: 0, lset: &[("__name__", "empty_histogram_bucket"), ("le", "+Inf")] },
    Want::Help(b"test_counter_with_createdtimestamp", "A counter with a created timestamp."),
    Want::Type(b"test_counter_with_createdtimestamp", MetricType::Counter),
    Want::Sample { m: b"test_counter_with_createdtimestamp", v: "42", t: None, st: 1625851153146, exemplars: 0, lset: &[("__name__", "test_counter_with_createdtimestamp")] },
    Want::Help(b"test_summary_with_createdtimestamp", "A summary with a created timestamp."),
    Want::Type(b"test_summary_with_createdtimestamp", MetricType::Summary),
    Want::Sample { m: b"test_summary_with_createdtimestamp_count", v: "42", t: None, st: 1625851153146, exemplars: 0, lset: &[("__name__", "test_summary_with_createdtimestamp_count")] },
    Want::Sample { m: b"test_summary_with_createdtimestamp_sum", v: "1.234", t: None, st: 1625851153146, exemplars: 0, lset: &[("__name__", "test_summary_with_createdtimestamp_sum")] },
    Want::Help(b"test_histogram_with_createdtimestamp", "A histogram with a created timestamp."),
    Want::Type(b"test_histogram_with_createdtimestamp", MetricType::Histogram),
    Want::Sample { m: b"test_histogram_with_createdtimestamp_count", v: "0", t: None, st: 1625851153146, exemplars: 0, lset: &[("__name__", "test_histogram_with_createdtimestamp_count")] },
    Want::Sample { m: b"test_histogram_with_createdtimestamp_sum", v: "0", t: None, st: 1625851153146, exemplars: 0, lset: &[("__name__", "test_histogram_with_createdtimestamp_sum")] },
    Want::Sample { m: b"test_histogram_with_createdtimestamp_bucket\xffle\xff+Inf", v: "0", t: None, st: 1625851153146, exemplars: 0, lset: &[("__name__", "test_histogram_with_createdtimestamp_bucket"), ("le", "+Inf")] },
    Want::Help(b"test_gaugehistogram_with_createdtimestamp", "A gauge histogram with a created timestamp."),
    Want::Type(b"test_gaugehistogram_with_createdtimestamp", MetricType::GaugeHistogram),
    Want::Sample { m: b"test_gaugehistogram_with_createdtimestamp_count", v: "0", t: None, st: 1625851153146, exemplars: 0, lset: &[("__name__", "test_gaugehistogram_with_createdtimestamp_count")] },
    Want::Sample { m: b"test_gaugehistogram_with_createdtimestamp_sum", v: "0", t: None, st: 1625851153146, exemplars: 0, lset: &[("__name__", "test_gaugehistogram_with_createdtimestamp_sum")] },
    Want::Sample { m: b"test_gaugehistogram_with_createdtimestamp_bucket\xffle\xff+Inf", v: "0", t: None, st: 1625851153146, exemplars: 0, lset: &[("__name__", "test_gaugehistogram_with_createdtimestamp_bucket"), ("le", "+Inf")] },
    Want::Help(b"test_histogram_with_native_histogram_exemplars", "A histogram with native histogram exemplars."),
    Want::Type(b"test_histogram_with_native_histogram_exemplars", MetricType::Histogram),
    Want::Sample { m: b"test_histogram_with_native_histogram_exemplars_count", v: "175", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_with_native_histogram_exemplars_count")] },
    Want::Sample { m: b"test_histogram_with_native_histogram_exemplars_sum", v: "0.0008280461746287094", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_with_native_histogram_exemplars_sum")] },
    Want::Sample { m: b"test_histogram_with_native_histogram_exemplars_bucket\xffle\xff-0.0004899999999999998", v: "2", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_with_native_histogram_exemplars_bucket"), ("le", "-0.0004899999999999998")] },
    Want::Sample { m: b"test_histogram_with_native_histogram_exemplars_bucket\xffle\xff-0.0003899999999999998", v: "4", t: Some(1234568), st: 0, exemplars: 1, lset: &[("__name__", "test_histogram_with_native_histogram_exemplars_bucket"), ("le", "-0.0003899999999999998")] },
    Want::Sample { m: b"test_histogram_with_native_histogram_exemplars_bucket\xffle\xff-0.0002899999999999998", v: "16", t: Some(1234568), st: 0, exemplars: 1, lset: &[("__name__", "test_histogram_with_native_histogram_exemplars_bucket"), ("le", "-0.0002899999999999998")] },
    Want::Sample { m: b"test_histogram_with_native_histogram_exemplars_bucket\xffle\xff+Inf", v: "175", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_with_native_histogram_exemplars_bucket"), ("le", "+Inf")] },
    Want::Help(b"test_histogram_with_native_histogram_exemplars2", "Another histogram with native histogram exemplars."),
    Want::Type(b"test_histogram_with_native_histogram_exemplars2", MetricType::Histogram),
    Want::Sample { m: b"test_histogram_with_native_histogram_exemplars2_count", v: "175", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_with_native_histogram_exemplars2_count")] },
    Want::Sample { m: b"test_histogram_with_native_histogram_exemplars2_sum", v: "0.0008280461746287094", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_with_native_histogram_exemplars2_sum")] },
    Want::Sample { m: b"test_histogram_with_native_histogram_exemplars2_bucket\xffle\xff-0.0004899999999999998", v: "2", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_with_native_histogram_exemplars2_bucket"), ("le", "-0.0004899999999999998")] },
    Want::Sample { m: b"test_histogram_with_native_histogram_exemplars2_bucket\xffle\xff-0.0003899999999999998", v: "4", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_with_native_histogram_exemplars2_bucket"), ("le", "-0.0003899999999999998")] },
    Want::Sample { m: b"test_histogram_with_native_histogram_exemplars2_bucket\xffle\xff-0.0002899999999999998", v: "16", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_with_native_histogram_exemplars2_bucket"), ("le", "-0.0002899999999999998")] },
    Want::Sample { m: b"test_histogram_with_native_histogram_exemplars2_bucket\xffle\xff+Inf", v: "175", t: Some(1234568), st: 0, exemplars: 0, lset: &[("__name__", "test_histogram_with_native_histogram_exemplars2_bucket"), ("le", "+Inf")] },
];

/// Prometheus's first `TestProtobufParse` scenario (native histograms on, their classic
/// series off): each sample's series key, and whether it is a native histogram.
pub(super) const NATIVE_KEYS: &[(&[u8], bool)] = &[
    (b"go_build_info\xffchecksum\xff\xffpath\xffgithub.com/prometheus/client_golang\xffversion\xff(devel)", false),
    (b"go_memstats_alloc_bytes_total", false),
    (b"something_untyped", false),
    (b"test_histogram", true),
    (b"test_gauge_histogram", true),
    (b"test_float_histogram", true),
    (b"test_gauge_float_histogram", true),
    (b"test_histogram2_count", false),
    (b"test_histogram2_sum", false),
    (b"test_histogram2_bucket\xffle\xff-0.00048", false),
    (b"test_histogram2_bucket\xffle\xff-0.00038", false),
    (b"test_histogram2_bucket\xffle\xff1.0", false),
    (b"test_histogram2_bucket\xffle\xff+Inf", false),
    (b"test_histogram3_count", false),
    (b"test_histogram3_sum", false),
    (b"test_histogram3_bucket\xffle\xff-20.0", false),
    (b"test_histogram3_bucket\xffle\xff20.0", false),
    (b"test_histogram3_bucket\xffle\xff30.0", false),
    (b"test_histogram3_bucket\xffle\xff+Inf", false),
    (b"test_histogram_family\xfffoo\xffbar", true),
    (b"test_histogram_family\xfffoo\xffbaz", true),
    (b"test_float_histogram_with_zerothreshold_zero", true),
    (b"rpc_durations_seconds_count\xffservice\xffexponential", false),
    (b"rpc_durations_seconds_sum\xffservice\xffexponential", false),
    (b"rpc_durations_seconds\xffquantile\xff0.5\xffservice\xffexponential", false),
    (b"rpc_durations_seconds\xffquantile\xff0.9\xffservice\xffexponential", false),
    (b"rpc_durations_seconds\xffquantile\xff0.99\xffservice\xffexponential", false),
    (b"without_quantiles_count", false),
    (b"without_quantiles_sum", false),
    (b"empty_histogram", true),
    (b"test_counter_with_createdtimestamp", false),
    (b"test_summary_with_createdtimestamp_count", false),
    (b"test_summary_with_createdtimestamp_sum", false),
    (b"test_histogram_with_createdtimestamp", true),
    (b"test_gaugehistogram_with_createdtimestamp", true),
    (b"test_histogram_with_native_histogram_exemplars", true),
    (b"test_histogram_with_native_histogram_exemplars2", true),
];

/// Its third scenario (native histograms on, classic series kept): the same.
pub(super) const KEEP_CLASSIC_KEYS: &[(&[u8], bool)] = &[
    (b"go_build_info\xffchecksum\xff\xffpath\xffgithub.com/prometheus/client_golang\xffversion\xff(devel)", false),
    (b"go_memstats_alloc_bytes_total", false),
    (b"something_untyped", false),
    (b"test_histogram", true),
    (b"test_histogram_count", false),
    (b"test_histogram_sum", false),
    (b"test_histogram_bucket\xffle\xff-0.0004899999999999998", false),
    (b"test_histogram_bucket\xffle\xff-0.0003899999999999998", false),
    (b"test_histogram_bucket\xffle\xff-0.0002899999999999998", false),
    (b"test_histogram_bucket\xffle\xff+Inf", false),
    (b"test_gauge_histogram", true),
    (b"test_gauge_histogram_count", false),
    (b"test_gauge_histogram_sum", false),
    (b"test_gauge_histogram_bucket\xffle\xff-0.0004899999999999998", false),
    (b"test_gauge_histogram_bucket\xffle\xff-0.0003899999999999998", false),
    (b"test_gauge_histogram_bucket\xffle\xff-0.0002899999999999998", false),
    (b"test_gauge_histogram_bucket\xffle\xff+Inf", false),
    (b"test_float_histogram", true),
    (b"test_float_histogram_count", false),
    (b"test_float_histogram_sum", false),
    (b"test_float_histogram_bucket\xffle\xff-0.0004899999999999998", false),
    (b"test_float_histogram_bucket\xffle\xff-0.0003899999999999998", false),
    (b"test_float_histogram_bucket\xffle\xff-0.0002899999999999998", false),
    (b"test_float_histogram_bucket\xffle\xff+Inf", false),
    (b"test_gauge_float_histogram", true),
    (b"test_gauge_float_histogram_count", false),
    (b"test_gauge_float_histogram_sum", false),
    (b"test_gauge_float_histogram_bucket\xffle\xff-0.0004899999999999998", false),
    (b"test_gauge_float_histogram_bucket\xffle\xff-0.0003899999999999998", false),
    (b"test_gauge_float_histogram_bucket\xffle\xff-0.0002899999999999998", false),
    (b"test_gauge_float_histogram_bucket\xffle\xff+Inf", false),
    (b"test_histogram2_count", false),
    (b"test_histogram2_sum", false),
    (b"test_histogram2_bucket\xffle\xff-0.00048", false),
    (b"test_histogram2_bucket\xffle\xff-0.00038", false),
    (b"test_histogram2_bucket\xffle\xff1.0", false),
    (b"test_histogram2_bucket\xffle\xff+Inf", false),
    (b"test_histogram3_count", false),
    (b"test_histogram3_sum", false),
    (b"test_histogram3_bucket\xffle\xff-20.0", false),
    (b"test_histogram3_bucket\xffle\xff20.0", false),
    (b"test_histogram3_bucket\xffle\xff30.0", false),
    (b"test_histogram3_bucket\xffle\xff+Inf", false),
    (b"test_histogram_family\xfffoo\xffbar", true),
    (b"test_histogram_family_count\xfffoo\xffbar", false),
    (b"test_histogram_family_sum\xfffoo\xffbar", false),
    (b"test_histogram_family_bucket\xfffoo\xffbar\xffle\xff1.1", false),
    (b"test_histogram_family_bucket\xfffoo\xffbar\xffle\xff2.2", false),
    (b"test_histogram_family_bucket\xfffoo\xffbar\xffle\xff+Inf", false),
    (b"test_histogram_family\xfffoo\xffbaz", true),
    (b"test_histogram_family_count\xfffoo\xffbaz", false),
    (b"test_histogram_family_sum\xfffoo\xffbaz", false),
    (b"test_histogram_family_bucket\xfffoo\xffbaz\xffle\xff1.1", false),
    (b"test_histogram_family_bucket\xfffoo\xffbaz\xffle\xff2.2", false),
    (b"test_histogram_family_bucket\xfffoo\xffbaz\xffle\xff+Inf", false),
    (b"test_float_histogram_with_zerothreshold_zero", true),
    (b"rpc_durations_seconds_count\xffservice\xffexponential", false),
    (b"rpc_durations_seconds_sum\xffservice\xffexponential", false),
    (b"rpc_durations_seconds\xffquantile\xff0.5\xffservice\xffexponential", false),
    (b"rpc_durations_seconds\xffquantile\xff0.9\xffservice\xffexponential", false),
    (b"rpc_durations_seconds\xffquantile\xff0.99\xffservice\xffexponential", false),
    (b"without_quantiles_count", false),
    (b"without_quantiles_sum", false),
    (b"empty_histogram", true),
    (b"test_counter_with_createdtimestamp", false),
    (b"test_summary_with_createdtimestamp_count", false),
    (b"test_summary_with_createdtimestamp_sum", false),
    (b"test_histogram_with_createdtimestamp", true),
    (b"test_gaugehistogram_with_createdtimestamp", true),
    (b"test_histogram_with_native_histogram_exemplars", true),
    (b"test_histogram_with_native_histogram_exemplars_count", false),
    (b"test_histogram_with_native_histogram_exemplars_sum", false),
    (b"test_histogram_with_native_histogram_exemplars_bucket\xffle\xff-0.0004899999999999998", false),
    (b"test_histogram_with_native_histogram_exemplars_bucket\xffle\xff-0.0003899999999999998", false),
    (b"test_histogram_with_native_histogram_exemplars_bucket\xffle\xff-0.0002899999999999998", false),
    (b"test_histogram_with_native_histogram_exemplars_bucket\xffle\xff+Inf", false),
    (b"test_histogram_with_native_histogram_exemplars2", true),
    (b"test_histogram_with_native_histogram_exemplars2_count", false),
    (b"test_histogram_with_native_histogram_exemplars2_sum", false),
    (b"test_histogram_with_native_histogram_exemplars2_bucket\xffle\xff-0.0004899999999999998", false),
    (b"test_histogram_with_native_histogram_exemplars2_bucket\xffle\xff-0.0003899999999999998", false),
    (b"test_histogram_with_native_histogram_exemplars2_bucket\xffle\xff-0.0002899999999999998", false),
    (b"test_histogram_with_native_histogram_exemplars2_bucket\xffle\xff+Inf", false),
];
