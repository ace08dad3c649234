use clap::{Args, Command, FromArgMatches};

use super::*;

fn parse(argv: &[&str]) -> Result<TelemetryArgs, clap::Error> {
    let command = TelemetryArgs::augment_args(Command::new("test").no_binary_name(true));
    let matches = command.try_get_matches_from(argv)?;
    TelemetryArgs::from_arg_matches(&matches)
}

#[test]
fn flags_on_the_command_line_are_parsed() {
    let args = parse(&[
        "--log-format",
        "json",
        "--log-level",
        "info,rkube_store=debug",
        "--otlp-endpoint",
        "http://127.0.0.1:4317",
    ])
    .unwrap();
    assert_eq!(args.log_format, LogFormat::Json);
    assert_eq!(args.log_level, "info,rkube_store=debug");
    assert_eq!(args.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4317"));
}

#[test]
fn an_invalid_log_filter_is_rejected_while_parsing_flags() {
    let err = parse(&["--log-level", "rkube_store=loud"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
}

#[test]
fn an_otlp_endpoint_without_a_scheme_is_rejected_while_parsing_flags() {
    let err = parse(&["--otlp-endpoint", "127.0.0.1:4317"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
}

#[test]
fn an_unknown_log_format_is_rejected() {
    assert!(parse(&["--log-format", "xml"]).is_err());
}

#[test]
fn the_default_args_log_text_at_info_without_an_exporter() {
    let args = TelemetryArgs::default();
    assert_eq!(args.log_format, LogFormat::Text);
    assert_eq!(args.log_level, "info");
    assert_eq!(args.otlp_endpoint, None);
}

#[test]
fn empty_values_count_as_unset() {
    let args = parse(&["--log-level", "", "--otlp-endpoint", ""]).unwrap();
    assert_eq!(args.log_filter(), "info");
    assert_eq!(args.otlp_endpoint(), None);
}

#[test]
fn flattening_the_args_does_not_replace_the_binarys_description() {
    let command = TelemetryArgs::augment_args(Command::new("rkube-test"));
    assert_eq!(command.get_about(), None);
    assert_eq!(command.get_long_about(), None);
}
