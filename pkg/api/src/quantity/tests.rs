use super::*;

#[test]
fn quantities_parse_to_exact_nano_values() {
    let cases: &[(&str, i128)] = &[
        ("0", 0),
        ("1", 1_000_000_000),
        ("100m", 100_000_000),
        ("1.5", 1_500_000_000),
        ("0.1m", 100_000),
        ("1n", 1),
        ("1u", 1_000),
        ("1k", 1_000_000_000_000),
        ("1Ki", 1024 * 1_000_000_000),
        ("1.5Gi", 1_610_612_736 * 1_000_000_000),
        ("128Mi", 134_217_728 * 1_000_000_000),
        ("1e3", 1_000_000_000_000),
        ("1E-3", 1_000_000),
        ("-2", -2_000_000_000),
        ("+2", 2_000_000_000),
        (".5", 500_000_000),
        ("5.", 5_000_000_000),
    ];
    for (s, nanos) in cases {
        assert_eq!(Quantity::parse(s).unwrap().nanos(), *nanos, "{s}");
    }
}

#[test]
fn values_below_a_nano_unit_round_up() {
    assert_eq!(Quantity::parse("0.1n").unwrap().nanos(), 1);
    assert_eq!(
        Quantity::parse("1.0000000001").unwrap().nanos(),
        1_000_000_001
    );
}

#[test]
fn malformed_quantities_are_rejected() {
    for s in ["", "abc", "1.2.3", "1Qi", "1e", "--1", "m", "1 Gi"] {
        assert!(Quantity::parse(s).is_err(), "{s}");
    }
    assert_eq!(
        Quantity::parse("x").unwrap_err().to_string(),
        QUANTITY_FORMAT_ERROR
    );
}

#[test]
fn equal_amounts_in_different_notations_compare_equal() {
    let q = |s: &str| Quantity::parse(s).unwrap();
    assert_eq!(q("1"), q("1000m"));
    assert_eq!(q("1Gi"), q("1024Mi"));
    assert_eq!(q("1e3"), q("1k"));
    assert!(q("500m") < q("1"));
    assert_eq!(q("250m") + q("750m"), q("1"));
    assert_eq!(q("1500m").value(), 2);
    assert_eq!(q("100m").milli_value(), 100);
}
