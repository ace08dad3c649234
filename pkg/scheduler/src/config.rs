//! The configuration file: a `KubeSchedulerConfiguration` (apiVersion
//! `kubescheduler.config.k8s.io/v1`) in YAML or JSON, turned into [`Settings`]: the
//! profiles (each its own `schedulerName`, filter and score plugins, score weights,
//! `percentageOfNodesToScore`, plugin arguments) and the queue's back-off.
//!
//! Decoding is strict, as Kubernetes' is: an unknown field, plugin or extension point is
//! an error naming it, so a typo never silently runs the defaults. Fields that configure
//! what rkube does elsewhere (leader election and client flags) are accepted and ignored.
//!
//! Plugins merge with the defaults as Kubernetes merges them: `multiPoint` first, then
//! `filter` and `score`; `disabled: [{name: "*"}]` drops every default of that point;
//! an enabled plugin already among the defaults keeps its place and takes the new weight.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::framework::scores::Strategy;
use crate::framework::{Plugin, Profile};
use crate::queue::QueueConfig;

pub const API_VERSION: &str = "kubescheduler.config.k8s.io/v1";
pub const KIND: &str = "KubeSchedulerConfiguration";

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// What the scheduler runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub profiles: Vec<Profile>,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        let q = QueueConfig::default();
        Settings {
            profiles: vec![Profile::default()],
            initial_backoff: q.initial_backoff,
            max_backoff: q.max_backoff,
        }
    }
}

impl Settings {
    pub fn queue_config(&self) -> QueueConfig {
        QueueConfig {
            initial_backoff: self.initial_backoff,
            max_backoff: self.max_backoff,
            ..QueueConfig::default()
        }
    }

    pub fn profile(&self, scheduler_name: &str) -> Option<&Profile> {
        self.profiles
            .iter()
            .find(|p| p.scheduler_name == scheduler_name)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Document {
    api_version: Option<String>,
    kind: Option<String>,
    percentage_of_nodes_to_score: Option<i64>,
    pod_initial_backoff_seconds: Option<i64>,
    pod_max_backoff_seconds: Option<i64>,
    #[serde(default)]
    profiles: Vec<ProfileDoc>,
    // Accepted, configured elsewhere in rkube:
    #[allow(dead_code)]
    parallelism: Option<i64>,
    #[allow(dead_code)]
    leader_election: Option<Value>,
    #[allow(dead_code)]
    client_connection: Option<Value>,
    #[allow(dead_code)]
    enable_profiling: Option<bool>,
    #[allow(dead_code)]
    enable_contention_profiling: Option<bool>,
    #[allow(dead_code)]
    delay_cache_until_active: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProfileDoc {
    scheduler_name: Option<String>,
    percentage_of_nodes_to_score: Option<i64>,
    plugins: Option<Plugins>,
    #[serde(default)]
    plugin_config: Vec<PluginConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Plugins {
    multi_point: Option<PluginSet>,
    filter: Option<PluginSet>,
    score: Option<PluginSet>,
    // Extension points rkube's plugins run implicitly; naming them changes nothing but
    // is accepted so Kubernetes' files load.
    #[allow(dead_code)]
    pre_enqueue: Option<PluginSet>,
    #[allow(dead_code)]
    queue_sort: Option<PluginSet>,
    #[allow(dead_code)]
    pre_filter: Option<PluginSet>,
    #[allow(dead_code)]
    post_filter: Option<PluginSet>,
    #[allow(dead_code)]
    pre_score: Option<PluginSet>,
    #[allow(dead_code)]
    reserve: Option<PluginSet>,
    #[allow(dead_code)]
    permit: Option<PluginSet>,
    #[allow(dead_code)]
    pre_bind: Option<PluginSet>,
    #[allow(dead_code)]
    bind: Option<PluginSet>,
    #[allow(dead_code)]
    post_bind: Option<PluginSet>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PluginSet {
    #[serde(default)]
    enabled: Vec<PluginRef>,
    #[serde(default)]
    disabled: Vec<PluginRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PluginRef {
    name: String,
    weight: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PluginConfig {
    name: String,
    #[serde(default)]
    args: Value,
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        Problem::Yaml(message) => ConfigError::Yaml {
            path: path.to_path_buf(),
            message,
        },
        Problem::Decode(message) => ConfigError::Decode {
            path: path.to_path_buf(),
            message,
        },
        Problem::Invalid(message) => ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        },
    })
}

/// What is wrong with a configuration text (the file's path is added by [`load`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Yaml(String),
    Decode(String),
    Invalid(String),
}

/// Parses and checks a configuration text.
pub fn parse(text: &str) -> Result<Settings, Problem> {
    let docs =
        yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| Problem::Yaml(e.to_string()))?;
    let value = match docs.into_iter().next() {
        Some(y) => yaml_to_json(y).map_err(Problem::Yaml)?,
        None => return Err(Problem::Invalid("the file is empty".into())),
    };
    let doc: Document =
        serde_json::from_value(value).map_err(|e| Problem::Decode(e.to_string()))?;
    let invalid = |m: String| Problem::Invalid(m);
    match doc.api_version.as_deref() {
        Some(API_VERSION) => {}
        other => {
            return Err(invalid(format!(
                "apiVersion {:?} is not supported: use {API_VERSION}",
                other.unwrap_or("")
            )))
        }
    }
    if doc.kind.as_deref() != Some(KIND) {
        return Err(invalid(format!(
            "kind {:?} is not supported: use {KIND}",
            doc.kind.as_deref().unwrap_or("")
        )));
    }
    let percentage = |p: Option<i64>, field: &str| -> Result<Option<u32>, Problem> {
        match p {
            None | Some(0) => Ok(None),
            Some(v @ 1..=100) => Ok(Some(v as u32)),
            Some(v) => Err(invalid(format!(
                "{field}: Invalid value: {v}: not in valid range [0-100]"
            ))),
        }
    };
    let global = percentage(doc.percentage_of_nodes_to_score, "percentageOfNodesToScore")?;
    let mut settings = Settings::default();
    if let Some(s) = doc.pod_initial_backoff_seconds {
        if s <= 0 {
            return Err(invalid(format!(
                "podInitialBackoffSeconds: Invalid value: {s}: must be greater than 0"
            )));
        }
        settings.initial_backoff = Duration::from_secs(s as u64);
    }
    if let Some(s) = doc.pod_max_backoff_seconds {
        if s <= 0 || Duration::from_secs(s as u64) < settings.initial_backoff {
            return Err(invalid(format!(
                "podMaxBackoffSeconds: Invalid value: {s}: must be greater than or equal to podInitialBackoffSeconds"
            )));
        }
        settings.max_backoff = Duration::from_secs(s as u64);
    }
    let mut docs = doc.profiles;
    if docs.is_empty() {
        docs.push(ProfileDoc {
            scheduler_name: None,
            percentage_of_nodes_to_score: None,
            plugins: None,
            plugin_config: vec![],
        });
    }
    if docs.len() == 1 && docs[0].scheduler_name.is_none() {
        docs[0].scheduler_name = Some(crate::DEFAULT_SCHEDULER_NAME.into());
    }
    let mut profiles: Vec<Profile> = Vec::new();
    for (i, p) in docs.into_iter().enumerate() {
        let at = format!("profiles[{i}]");
        let name = p.scheduler_name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(invalid(format!("{at}.schedulerName: Required value")));
        }
        if profiles.iter().any(|q| q.scheduler_name == name) {
            return Err(invalid(format!(
                "{at}.schedulerName: Duplicate value: {name:?}"
            )));
        }
        let mut profile = Profile::default_named(&name);
        profile.percentage_of_nodes_to_score = match p.percentage_of_nodes_to_score {
            Some(v) => percentage(Some(v), &format!("{at}.percentageOfNodesToScore"))?,
            None => global,
        };
        let plugins = p.plugins.unwrap_or_default();
        if let Some(set) = &plugins.multi_point {
            merge(&mut profile, set, Point::Multi, &at)?;
        }
        if let Some(set) = &plugins.filter {
            merge(&mut profile, set, Point::Filter, &at)?;
        }
        if let Some(set) = &plugins.score {
            merge(&mut profile, set, Point::Score, &at)?;
        }
        for (j, pc) in p.plugin_config.iter().enumerate() {
            plugin_args(&mut profile, pc)
                .map_err(|m| invalid(format!("{at}.pluginConfig[{j}]: {m}")))?;
        }
        profiles.push(profile);
    }
    settings.profiles = profiles;
    Ok(settings)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    Multi,
    Filter,
    Score,
}

fn merge(profile: &mut Profile, set: &PluginSet, point: Point, at: &str) -> Result<(), Problem> {
    let point_name = match point {
        Point::Multi => "multiPoint",
        Point::Filter => "filter",
        Point::Score => "score",
    };
    let lookup = |name: &str| {
        Plugin::from_name(name).ok_or_else(|| {
            Problem::Invalid(format!(
                "{at}.plugins.{point_name}: {name:?} is not a plugin rkube knows (known: {})",
                Plugin::ALL.map(Plugin::name).join(", ")
            ))
        })
    };
    let (filters, scores) = (point != Point::Score, point != Point::Filter);
    for d in &set.disabled {
        if d.name == "*" {
            if filters {
                profile.filters.clear();
            }
            if scores {
                profile.scores.clear();
            }
            continue;
        }
        let p = lookup(&d.name)?;
        if filters {
            profile.filters.retain(|f| *f != p);
        }
        if scores {
            profile.scores.retain(|(s, _)| *s != p);
        }
    }
    for e in &set.enabled {
        let p = lookup(&e.name)?;
        let weight = match e.weight {
            None | Some(0) => p.default_weight(),
            Some(w) if w > 0 => w,
            Some(w) => {
                return Err(Problem::Invalid(format!(
                    "{at}.plugins.{point_name}: {}: weight {w} must be positive",
                    e.name
                )))
            }
        };
        if point == Point::Filter && !p.has_filter() || point == Point::Score && !p.has_score() {
            return Err(Problem::Invalid(format!(
                "{at}.plugins.{point_name}: plugin {:?} does not extend {point_name}",
                e.name
            )));
        }
        if filters && p.has_filter() && !profile.filters.contains(&p) {
            profile.filters.push(p);
        }
        if scores && p.has_score() {
            match profile.scores.iter_mut().find(|(s, _)| *s == p) {
                Some(slot) => slot.1 = weight,
                None => profile.scores.push((p, weight)),
            }
        }
    }
    Ok(())
}

fn plugin_args(profile: &mut Profile, pc: &PluginConfig) -> Result<(), String> {
    let plugin = Plugin::from_name(&pc.name)
        .ok_or_else(|| format!("{:?} is not a plugin rkube knows", pc.name))?;
    match plugin {
        Plugin::NodeResourcesFit => {
            let Some(strategy) = pc.args.get("scoringStrategy") else {
                return Ok(());
            };
            profile.fit_strategy = match strategy.get("type").and_then(Value::as_str) {
                None | Some("LeastAllocated") => Strategy::LeastAllocated,
                Some("MostAllocated") => Strategy::MostAllocated,
                Some(other) => {
                    return Err(format!(
                        "args.scoringStrategy.type: Unsupported value: {other:?}: supported values: \"LeastAllocated\", \"MostAllocated\""
                    ))
                }
            };
            if let Some(resources) = strategy.get("resources").and_then(Value::as_array) {
                let mut weights = [0, 0];
                for r in resources {
                    let w = r.get("weight").and_then(Value::as_i64).unwrap_or(1);
                    if !(1..=100).contains(&w) {
                        return Err(format!("args.scoringStrategy.resources: weight {w} not in [1-100]"));
                    }
                    match r.get("name").and_then(Value::as_str) {
                        Some("cpu") => weights[0] = w,
                        Some("memory") => weights[1] = w,
                        other => {
                            return Err(format!(
                                "args.scoringStrategy.resources: {:?}: rkube scores cpu and memory only",
                                other.unwrap_or("")
                            ))
                        }
                    }
                }
                profile.fit_weights = weights;
            }
        }
        Plugin::PodTopologySpread => {
            match pc.args.get("defaultingType").and_then(Value::as_str) {
                None | Some("System") => profile.default_spreading = true,
                Some("List") => {
                    if pc
                        .args
                        .get("defaultConstraints")
                        .and_then(Value::as_array)
                        .is_some_and(|c| !c.is_empty())
                    {
                        return Err("args.defaultConstraints: rkube supports only the system defaults or none (an empty list)".into());
                    }
                    profile.default_spreading = false;
                }
                Some(other) => {
                    return Err(format!(
                        "args.defaultingType: Unsupported value: {other:?}: supported values: \"System\", \"List\""
                    ))
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn yaml_to_json(y: yaml_rust2::Yaml) -> Result<Value, String> {
    use yaml_rust2::Yaml;
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::from(i),
        Yaml::Real(s) => {
            let f: f64 = s.parse().map_err(|_| format!("{s} is not a number"))?;
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| format!("{s} has no JSON form"))?
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Array(a) => Value::Array(a.into_iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut m = serde_json::Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => return Err(format!("unsupported map key {other:?}")),
                };
                m.insert(key, yaml_to_json(v)?);
            }
            Value::Object(m)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err("aliases and bad values are not supported".into())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n";

    #[test]
    fn an_empty_configuration_is_the_default_profile() {
        let s = parse(HEAD).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.profiles[0].scheduler_name, "default-scheduler");
    }

    #[test]
    fn profiles_enable_and_disable_plugins_per_extension_point_with_weights() {
        let s = parse(&format!(
            "{HEAD}percentageOfNodesToScore: 30\npodInitialBackoffSeconds: 2\npodMaxBackoffSeconds: 20\nprofiles:
- schedulerName: default-scheduler
- schedulerName: packer
  percentageOfNodesToScore: 100
  plugins:
    filter:
      disabled: [{{name: NodePorts}}]
    score:
      disabled: [{{name: \"*\"}}]
      enabled:
      - {{name: NodeResourcesFit, weight: 5}}
      - {{name: TaintToleration}}
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{{name: cpu, weight: 3}}, {{name: memory, weight: 1}}]
  - name: PodTopologySpread
    args: {{defaultingType: List}}
"
        ))
        .unwrap();
        assert_eq!(s.initial_backoff, Duration::from_secs(2));
        assert_eq!(s.max_backoff, Duration::from_secs(20));
        let d = s.profile("default-scheduler").unwrap();
        assert_eq!(d.percentage_of_nodes_to_score, Some(30));
        assert_eq!(d.filters, crate::framework::DEFAULT_FILTERS);
        let p = s.profile("packer").unwrap();
        assert_eq!(p.percentage_of_nodes_to_score, Some(100));
        assert!(!p.filters.contains(&Plugin::NodePorts));
        assert_eq!(p.filters.len(), 7);
        assert_eq!(
            p.scores,
            [(Plugin::NodeResourcesFit, 5), (Plugin::TaintToleration, 3)]
        );
        assert_eq!(p.fit_strategy, Strategy::MostAllocated);
        assert_eq!(p.fit_weights, [3, 1]);
        assert!(!p.default_spreading);
    }

    #[test]
    fn multi_point_applies_to_filter_and_score() {
        let s = parse(&format!(
            "{HEAD}profiles:\n- plugins:\n    multiPoint:\n      disabled: [{{name: TaintToleration}}]\n"
        ))
        .unwrap();
        let p = &s.profiles[0];
        assert!(!p.filters.contains(&Plugin::TaintToleration));
        assert!(!p.scores.iter().any(|(s, _)| *s == Plugin::TaintToleration));
    }

    #[test]
    fn bad_files_are_refused_with_a_message_naming_the_problem() {
        let cases = [
            ("apiVersion: v1\nkind: KubeSchedulerConfiguration\n", "apiVersion \"v1\" is not supported"),
            (&format!("{HEAD}percentageOfNodesToScore: 101\n") as &str, "not in valid range [0-100]"),
            (&format!("{HEAD}profiles:\n- schedulerName: a\n- schedulerName: a\n"), "Duplicate value: \"a\""),
            (&format!("{HEAD}profiles:\n- schedulerName: a\n- {{}}\n"), "profiles[1].schedulerName: Required value"),
            (&format!("{HEAD}profiles:\n- plugins:\n    filter:\n      enabled: [{{name: Nope}}]\n"), "\"Nope\" is not a plugin"),
            (&format!("{HEAD}profiles:\n- plugins:\n    filter:\n      enabled: [{{name: NodeResourcesBalancedAllocation}}]\n"), "does not extend filter"),
            (&format!("{HEAD}profiles:\n- plugins:\n    score:\n      enabled: [{{name: NodePorts}}]\n"), "does not extend score"),
            (&format!("{HEAD}profiles:\n- plugins:\n    score:\n      enabled: [{{name: NodeAffinity, weight: -1}}]\n"), "must be positive"),
            (&format!("{HEAD}profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args: {{scoringStrategy: {{type: RequestedToCapacityRatio}}}}\n"), "Unsupported value"),
            (&format!("{HEAD}percentageOfNodes: 3\n"), "unknown field `percentageOfNodes`"),
            (&format!("{HEAD}profiles: [\n"), ""),
            ("", "empty"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            let msg = match &err {
                Problem::Yaml(m) | Problem::Decode(m) | Problem::Invalid(m) => m.clone(),
            };
            assert!(msg.contains(want), "{text:?}: {msg}");
        }
    }
}
