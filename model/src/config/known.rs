//! Fields Prometheus knows that promshard does not implement, by the section that holds them
//! (`prometheus/prometheus` `config/config.go` and `discovery/*/`, `prometheus/common`
//! `config/http_config.go`, as of Prometheus 3.x). A config using one is refused with "not
//! implemented by promshard", never with "unknown field", so users can tell a typo from a
//! missing feature.

/// Every service discovery Prometheus has, by its `<name>_sd_configs` key, except those
/// promshard implements (static, file, kubernetes, http, dns, consul).
const SERVICE_DISCOVERIES: &[&str] = &[
    "aws_sd_configs",
    "azure_sd_configs",
    "digitalocean_sd_configs",
    "docker_sd_configs",
    "dockerswarm_sd_configs",
    "ec2_sd_configs",
    "ecs_sd_configs",
    "elasticache_sd_configs",
    "eureka_sd_configs",
    "gce_sd_configs",
    "hetzner_sd_configs",
    "ionos_sd_configs",
    "kuma_sd_configs",
    "lightsail_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "msk_sd_configs",
    "nerve_sd_configs",
    "nomad_sd_configs",
    "oci_sd_configs",
    "openstack_sd_configs",
    "outscale_sd_configs",
    "ovhcloud_sd_configs",
    "puppetdb_sd_configs",
    "rds_sd_configs",
    "scaleway_sd_configs",
    "serverset_sd_configs",
    "stackit_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
];

/// Prometheus's fields per section (the field name the section is under, list indexes
/// skipped), with a note on what they are.
const NOT_IMPLEMENTED: &[(&str, &[&str], &str)] = &[
    (
        "",
        &["scrape_config_files"],
        " (list the scrape configs in this file)",
    ),
    (
        "attach_metadata",
        &["deployment", "job", "cronjob"],
        " (Kubernetes workload metadata)",
    ),
    (
        "basic_auth",
        &["username_ref", "password_ref"],
        " (secret references)",
    ),
    (
        "authorization",
        &["credentials_ref"],
        " (secret references)",
    ),
    (
        "tls_config",
        &["ca_ref", "cert_ref", "key_ref"],
        " (secret references)",
    ),
    (
        "oauth2",
        &[
            "client_secret_ref",
            "client_certificate_key_id",
            "client_certificate_key",
            "client_certificate_key_file",
            "client_certificate_key_ref",
            "signature_algorithm",
            "iss",
            "audience",
            "claims",
        ],
        " (only the client-credentials grant is)",
    ),
    (
        "remote_write",
        &["sigv4", "azuread", "google_iam", "failed_request_logging"],
        "",
    ),
    (
        "consul_sd_configs",
        &["namespace", "partition", "filter", "health_filter"],
        " (Consul Enterprise and filter expressions)",
    ),
];

/// Why `field` of `section` is Prometheus's but not implemented (a suffix for the message), or
/// `None` if Prometheus does not know it there either.
pub(super) fn not_implemented(section: &str, field: &str) -> Option<&'static str> {
    if section == "scrape_configs" && SERVICE_DISCOVERIES.contains(&field) {
        return Some(" (service discovery)");
    }
    NOT_IMPLEMENTED
        .iter()
        .find(|(s, fields, _)| *s == section && fields.contains(&field))
        .map(|(_, _, why)| *why)
}
