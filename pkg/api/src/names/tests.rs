use super::*;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

#[test]
fn name_formats_give_kubernetes_messages() {
    assert!(is_dns1123_subdomain("example.com").is_empty());
    assert_eq!(is_dns1123_subdomain("Foo"), [SUBDOMAIN_MSG]);
    assert_eq!(is_dns1123_label("Foo"), [LABEL_MSG]);
    assert_eq!(is_dns1123_label("a.b"), ["must not contain dots"]);
    assert_eq!(
        is_dns1123_label(&"a".repeat(64)),
        ["must be no more than 63 characters"]
    );
    assert_eq!(is_dns1035_label("1abc"), [DNS1035_MSG]);
    assert!(is_dns1035_label("web-1").is_empty());
    assert!(is_qualified_name("example.com/MyName").is_empty());
    assert_eq!(is_qualified_name("/a"), ["prefix part must be non-empty"]);
    assert_eq!(is_qualified_name("a/b/c").len(), 1);
    assert_eq!(is_qualified_name("").len(), 2);
    assert!(is_valid_label_value("").is_empty());
    assert_eq!(is_valid_label_value("-x").len(), 1);
    assert!(is_config_map_key("key.name").is_empty());
    assert_eq!(is_config_map_key(".."), ["must not be '..'"]);
    assert_eq!(is_config_map_key("..a"), ["must not start with '..'"]);
    assert_eq!(
        is_valid_port_num(0),
        ["must be between 1 and 65535, inclusive"]
    );
    assert!(is_valid_port_name("http").is_empty());
    assert_eq!(
        is_valid_port_name("-http--x-"),
        [
            "must not contain consecutive hyphens",
            "must not begin or end with a hyphen"
        ]
    );
    assert_eq!(
        is_valid_port_name("8080"),
        ["must contain at least one letter (a-z)"]
    );
    assert!(is_valid_percent("25%").is_empty());
    assert_eq!(
        is_valid_percent("25"),
        ["a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"]
    );
    assert!(is_valid_ip("10.0.0.1").is_empty());
    assert!(!is_valid_ip("10.0.0.01").is_empty());
    assert!(is_valid_cidr("10.244.0.0/16").is_empty());
    assert!(!is_valid_cidr("10.244.0.0/33").is_empty());
    assert_eq!(is_valid_path_segment_name(".."), ["may not be '..'"]);
    assert_eq!(
        is_valid_path_segment_name("a/b%"),
        ["may not contain '/'", "may not contain '%'"]
    );
}

#[test]
fn generate_name_prefixes_may_end_in_a_dash() {
    assert!(name_is_dns_subdomain("web-", true).is_empty());
    assert!(!name_is_dns_subdomain("web-", false).is_empty());
}

#[test]
fn generated_names_append_five_characters_to_a_cut_base() {
    let mut n = 0u32;
    let name = generate_name("web-", || {
        n += 1;
        n
    });
    assert_eq!(name, "web-cdfgh");
    let long = "a".repeat(70);
    assert_eq!(generate_name(&long, || 0).len(), 63);
}
